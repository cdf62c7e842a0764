"""How a run moves: which steps became ready, what each waits on, and the run's state.

A step gets a `not_before` the moment every step it depends on is done or skipped (its ready time):

- a manual step, an approval, or a notice nobody can send (no address) waits on a person: `waiting`,
  no `not_before`, until `tenure offboard done|approve|skip`; one that ends a service the client still pays
  for (its target names a `not_before` day) waits on the clock until that day, then on a person;
- a wait step waits on the clock: `waiting` until ready time + its seconds;
- anything else (auto, notice, verify) is due at once, unless the calendar holds it back: the final
  invoice is issued from the end-of-service day, and a step whose target names a `not_before` date (closing
  a backup account "on or after" the end) from that day; days start at midnight in the MSP's time zone.

The run: `done` when every step is done or skipped, `failed` when a step failed, `running` while a
worker holds a step, `planned` before anything happened, otherwise `waiting` (on a person or the clock).
`state_of` is the one place that decides it; the run's `state` column holds its answer, written by
`advance` after every change to the run's steps (and set `running` by `mark_running` when a worker claims
one), so every list, page and command reads that column and they always agree. A run recorded without
steps (history brought over, the demo's former client) keeps the state it was recorded with.

`advance` runs after every step (and every answer), so it reads little, as plain rows: which states the
run's steps are in (one index probe per state: the run's state); after a worker's step or a batch of ticks,
only the dependants of the steps that finished (each step lists its `dependants`), else every step not yet
given a `not_before` (`Pending`, which may become ready) and the keys of the finished ones; and when they
finished only for the dependencies of the steps it promotes. It writes only the steps it promoted. Reading
every pending step after each of a 2,000-device run's ten thousand steps made the run quadratic.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, bindparam, exists, select, update
from sqlalchemy.orm import Session

from tenure.bulk import chunks
from tenure.msp.models import MspSettings
from tenure.offboarding.models import OffboardingRun, OffboardingStep

TERMINAL = ("done", "skipped")
PERSON_KINDS = ("manual", "approval")


def waits_on_person(step: OffboardingStep | Pending) -> bool:
    return step.kind in PERSON_KINDS or (step.kind == "notice" and not step.action)


def on_person(step: OffboardingStep) -> bool:
    """Waiting now for someone to answer it."""
    return step.state == "waiting" and step.not_before is None


def steps_of(s: Session, run_id: int) -> list[OffboardingStep]:
    """The run's steps in plan order."""
    return list(
        s.scalars(select(OffboardingStep).where(OffboardingStep.run_id == run_id).order_by(OffboardingStep.position))
    )


@dataclass
class Pending:
    """A step not yet given what it waits on (`pending`, no `not_before`): what `promote` reads of it."""

    id: int
    key: str
    kind: str
    action: str | None
    depends_on: list[str]
    seconds: int | None
    held_until: str | None  # the target's `not_before` (a day), when it names one
    state: str = "pending"
    not_before: datetime | None = None


# The statements of `advance`, built once with parameters: it runs after every step, and building a
# statement costs SQLAlchemy several times what running it costs the database.
_step = OffboardingStep
_RUN = (
    select(OffboardingRun.state, OffboardingRun.completed_at, OffboardingRun.end_of_service)
    .where(OffboardingRun.id == bindparam("run_id"))
    .with_for_update()  # PostgreSQL: changes to one run's steps are serialized
)
STEP_STATES = ("pending", "waiting", "running", "done", "skipped", "failed")


def _has(*conditions: Any) -> Any:
    return exists().where(_step.run_id == bindparam("run_id"), *conditions)


# which states the run's steps are in: one probe of ix_step_run_state per state, not a count of every step
_PRESENT = select(*(_has(_step.state == state).label(state) for state in STEP_STATES))
_ATTEMPTED = select(_has(_step.attempts > 0))
_PENDING = (
    select(
        _step.id,
        _step.key,
        _step.kind,
        _step.action,
        _step.depends_on,
        _step.seconds,
        _step.target["not_before"].as_string(),
    )
    .where(_step.run_id == bindparam("run_id"), _step.state == "pending", _step.not_before.is_(None))
    .order_by(_step.position)
)
# the pending steps among some keys (the dependants of steps that just finished)
_PENDING_AMONG = _PENDING.where(_step.key.in_(bindparam("keys", expanding=True)))
_DEPENDANTS = select(_step.dependants).where(
    _step.run_id == bindparam("run_id"), _step.key.in_(bindparam("keys", expanding=True))
)
_FINISHED = select(_step.key).where(_step.run_id == bindparam("run_id"), _step.state.in_(TERMINAL))
_FINISHED_AMONG = _FINISHED.where(_step.key.in_(bindparam("keys", expanding=True)))
_FINISHED_AT = select(_step.key, _step.done_at).where(
    _step.run_id == bindparam("run_id"), _step.key.in_(bindparam("keys", expanding=True))
)


def pending_of(s: Session, run_id: int) -> list[Pending]:
    """The run's steps still `pending` without a `not_before`, in plan order."""
    return [Pending(*row) for row in s.execute(_PENDING, {"run_id": run_id})]


def finished_of(s: Session, run_id: int) -> set[str]:
    """The keys of the run's steps done or skipped."""
    return set(s.scalars(_FINISHED, {"run_id": run_id}))


def finished_at(s: Session, run_id: int, keys: set[str]) -> dict[str, datetime | None]:
    """When these steps (done or skipped) finished."""
    when: dict[str, datetime | None] = {}
    for some in chunks(sorted(keys)):
        when.update(s.execute(_FINISHED_AT, {"run_id": run_id, "keys": list(some)}).all())
    return when


def lock_run(s: Session, run_id: int) -> OffboardingRun:
    """The run, locked for this transaction (PostgreSQL): changes to one run's steps are serialized."""
    return s.scalars(select(OffboardingRun).where(OffboardingRun.id == run_id).with_for_update()).one()


def msp_zone(s: Session) -> ZoneInfo:
    name = s.scalars(select(MspSettings.timezone).limit(1)).first() or "UTC"
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def gate(step: Pending, end_of_service: date, zone: ZoneInfo) -> datetime | None:
    """The moment the calendar lets this step run, if it holds it back."""
    if step.action == "billing.final_invoice":
        return day_start(end_of_service, zone)
    if isinstance(step.held_until, str):
        try:
            return day_start(date.fromisoformat(step.held_until), zone)
        except ValueError:
            return None
    return None


def unmet(step: OffboardingStep, by_key: Mapping[str, OffboardingStep]) -> list[str]:
    return [d for d in step.depends_on if d not in by_key or by_key[d].state not in TERMINAL]


def _ready_after(s: Session, run_id: int, finished: Collection[str]) -> list[Pending]:
    """The pending steps that `finished` made ready: their dependants whose every dependency is finished."""
    candidates: set[str] = set()
    for some in chunks(sorted(finished)):
        for (dependants,) in s.execute(_DEPENDANTS, {"run_id": run_id, "keys": list(some)}):
            candidates.update(dependants or ())
    pending: list[Pending] = []
    for some in chunks(sorted(candidates)):
        pending += [Pending(*row) for row in s.execute(_PENDING_AMONG, {"run_id": run_id, "keys": list(some)})]
    needed = {d for step in pending for d in step.depends_on}
    done: set[str] = set()
    for some in chunks(sorted(needed)):
        done.update(s.scalars(_FINISHED_AMONG, {"run_id": run_id, "keys": list(some)}))
    pending.sort(key=lambda step: step.id)  # plan order: steps are inserted in it
    return ready_of(pending, done)


def ready_of(pending: Sequence[Pending], finished: set[str]) -> list[Pending]:
    """The pending steps whose every dependency is finished."""
    return [step for step in pending if all(d in finished for d in step.depends_on)]


def promote(
    end_of_service: date,
    ready: Sequence[Pending],
    finished: Mapping[str, datetime | None],
    now: datetime,
    zone: ZoneInfo,
) -> None:
    """Give every step that just became ready what it waits on (`finished`: when its dependencies finished)."""
    for step in ready:
        since = max((finished[d] or now for d in step.depends_on), default=now)
        if waits_on_person(step):
            step.state = "waiting"
            held = gate(step, end_of_service, zone)  # a person's step that ends a paid service: on the clock first
            if held is not None and held > now:
                step.not_before = held
        elif step.kind == "wait":
            step.state, step.not_before = "waiting", since + timedelta(seconds=step.seconds or 0)
        else:
            held = gate(step, end_of_service, zone)
            if held is not None and held > now:
                step.state, step.not_before = "waiting", held
            else:
                step.not_before = min(since, now)


def state_of(counts: Mapping[str, int], attempted: bool) -> str:
    """The run's state from how many of its steps are in each state, and whether any was attempted."""
    present = {state for state, n in counts.items() if n}
    if present <= set(TERMINAL):
        return "done"
    if "failed" in present:
        return "failed"
    if "running" in present:
        return "running"
    if not present & set(TERMINAL) and not attempted:
        return "planned"
    return "waiting"


def run_state(steps: Sequence[OffboardingStep]) -> str:
    return state_of(Counter(step.state for step in steps), any(step.attempts for step in steps))


# `state_of` with a step just claimed (`running`): the run is running, unless a failed step makes it failed.
# A run locked by a person's answer or another worker's `advance` is skipped (PostgreSQL): waiting for it while
# holding the claimed step could deadlock, and that `advance` writes the run's state anyway.
_MARK_RUNNING = (
    update(OffboardingRun)
    .where(
        OffboardingRun.id.in_(
            select(OffboardingRun.id)
            .where(
                OffboardingRun.id.in_(bindparam("ids", expanding=True)),
                OffboardingRun.state.not_in(("failed", "running")),
            )
            .with_for_update(skip_locked=True)
        )
    )
    .values(state="running")
)


def mark_running(connection: Connection, run_ids: set[int]) -> None:
    """The runs of steps a worker just claimed are `running` (in the claim's transaction), as `state_of` says."""
    if run_ids:
        connection.execute(_MARK_RUNNING, {"ids": sorted(run_ids)})


def advance(s: Session, run_id: int, now: datetime, finished: Collection[str] | None = None) -> str:
    """Promote the steps that became ready and bring the run's state up to date (in `s`'s transaction); the
    run's state. `finished`: the keys of the steps that just finished (done or skipped), when the caller knows
    them: only their dependants can have become ready, so only those are read (a worker's step, a batch of
    ticks); `None` reads every pending step (a new run, a person's answer that may settle more than one)."""
    run = s.execute(_RUN, {"run_id": run_id}).one()
    present = s.execute(_PRESENT, {"run_id": run_id}).one()._asdict()
    if finished is None:
        pending = pending_of(s, run_id)
        ready = ready_of(pending, finished_of(s, run_id) if pending else set())
    else:
        ready = _ready_after(s, run_id, finished)
    if ready:  # when their dependencies finished is read only now, for these few
        when = finished_at(s, run_id, {d for step in ready for d in step.depends_on})
        promote(run.end_of_service, ready, when, now, msp_zone(s))
    # one UPDATE per distinct outcome (an approval makes a whole phase due at the same moment)
    alike: dict[tuple[str, datetime | None], list[int]] = defaultdict(list)
    for promoted in ready:
        alike[(promoted.state, promoted.not_before)].append(promoted.id)
    for (state, not_before), ids in alike.items():
        for some in chunks(ids):
            s.execute(update(_step).where(_step.id.in_(some)).values(state=state, not_before=not_before))
    # promoting moves a step from `pending` to `pending` or `waiting` (due or not): the run's state is the same
    counts = {state: int(bool(there)) for state, there in present.items()}
    attempted = bool(present["done"] or present["skipped"]) or bool(s.scalar(_ATTEMPTED, {"run_id": run_id}))
    state = state_of(counts, attempted)
    if state != run.state or (state == "done" and run.completed_at is None):
        changed = s.get(OffboardingRun, run_id)  # through the ORM, for the change log
        assert changed is not None
        changed.state = state
        if state == "done" and changed.completed_at is None:
            changed.completed_at = now
        s.flush()
    return state

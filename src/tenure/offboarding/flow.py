"""How a run moves: which steps became ready, what each waits on, and the run's state.

A step gets a `not_before` the moment every step it depends on is done or skipped (its ready time):

- a manual step, an approval, or a notice nobody can send (no address) waits on a person: `waiting`,
  no `not_before`, until `tenure offboard done|approve|skip`;
- a wait step waits on the clock: `waiting` until ready time + its seconds;
- anything else (auto, notice, verify) is due at once, unless the calendar holds it back: the final
  invoice is issued from the end-of-service day, and a step whose target names a `not_before` date (closing
  a backup account "on or after" the end) from that day; days start at midnight in the MSP's time zone.

The run: `done` when every step is done or skipped, `failed` when a step failed, `running` while a
worker holds a step, `planned` before anything happened, otherwise `waiting` (on a person or the clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from tenure.msp.models import MspSettings
from tenure.offboarding.models import OffboardingRun, OffboardingStep

TERMINAL = ("done", "skipped")
PERSON_KINDS = ("manual", "approval")


def waits_on_person(step: OffboardingStep) -> bool:
    return step.kind in PERSON_KINDS or (step.kind == "notice" and not step.action)


def on_person(step: OffboardingStep) -> bool:
    """Waiting now for someone to answer it."""
    return step.state == "waiting" and step.not_before is None


def steps_of(s: Session, run_id: int, *, light: bool = False) -> list[OffboardingStep]:
    """The run's steps in plan order; `light`: without the bulky columns (results, targets, texts), which
    load on first use, for the bookkeeping after every step."""
    query = select(OffboardingStep).where(OffboardingStep.run_id == run_id).order_by(OffboardingStep.position)
    if light:
        query = query.options(
            defer(OffboardingStep.result),
            defer(OffboardingStep.target),
            defer(OffboardingStep.instructions),
            defer(OffboardingStep.title),
        )
    return list(s.scalars(query))


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


def gate(step: OffboardingStep, run: OffboardingRun, zone: ZoneInfo) -> datetime | None:
    """The moment the calendar lets this step run, if it holds it back."""
    if step.action == "billing.final_invoice":
        return day_start(run.end_of_service, zone)
    raw = (step.target or {}).get("not_before")
    if isinstance(raw, str):
        try:
            return day_start(date.fromisoformat(raw), zone)
        except ValueError:
            return None
    return None


def unmet(step: OffboardingStep, by_key: dict[str, OffboardingStep]) -> list[str]:
    return [d for d in step.depends_on if d not in by_key or by_key[d].state not in TERMINAL]


def promote(run: OffboardingRun, steps: Sequence[OffboardingStep], now: datetime, zone: ZoneInfo) -> None:
    """Give every step that just became ready what it waits on (the list is in dependency order)."""
    by_key = {step.key: step for step in steps}
    for step in steps:
        if step.state != "pending" or step.not_before is not None or unmet(step, by_key):
            continue
        ready = max((by_key[d].done_at or now for d in step.depends_on), default=now)
        if waits_on_person(step):
            step.state = "waiting"
        elif step.kind == "wait":
            step.state, step.not_before = "waiting", ready + timedelta(seconds=step.seconds or 0)
        else:
            held = gate(step, run, zone)
            if held is not None and held > now:
                step.state, step.not_before = "waiting", held
            else:
                step.not_before = min(ready, now)


def run_state(steps: Sequence[OffboardingStep]) -> str:
    if all(step.state in TERMINAL for step in steps):
        return "done"
    if any(step.state == "failed" for step in steps):
        return "failed"
    if any(step.state == "running" for step in steps):
        return "running"
    if not any(step.state in TERMINAL or step.attempts for step in steps):
        return "planned"
    return "waiting"


def advance(s: Session, run_id: int, now: datetime) -> OffboardingRun:
    """Promote the steps that became ready and bring the run's state up to date (in `s`'s transaction)."""
    run = lock_run(s, run_id)
    steps = steps_of(s, run_id, light=True)
    promote(run, steps, now, msp_zone(s))
    state = run_state(steps)
    if state != run.state:
        run.state = state
    if state == "done" and run.completed_at is None:
        run.completed_at = now
    s.flush()
    return run

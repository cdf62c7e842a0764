"""Offboarding use cases: the plan, a run started or continued, its status, and a person's answers.

- `make_plan`: the client's inventory (devices, vendor accounts with their details, backup jobs, the
  agreements still running at the end date, contacts, open tickets) and the answers, through
  `rules.plan`. Vendors Tenure can drive for this client (a connector, the account's URL and an API key)
  get automatic steps; the others manual ones. Nothing is written.
- `apply`: starts the client's run (the run, then one row per step of the plan, each with the idempotency
  key `<run id>:<step key>`) or continues its open one (the answers, when given again, must be the same),
  then runs every step due now and returns when the rest wait on a person or the clock.
- `approve`, `done`, `skip`, `retry`: a person's answers, on the client's open run. `STEP` is the step's
  key; the client may be left out when only one open run has that step.
- `work`: every due step of every run (what a worker process does).

A run that is done makes its client `former` (clients/rules.py) from its end of service on.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import Agreement
from tenure.clients.models import BackupJob, Client, Contact, Device, VendorAccount
from tenure.connectors.registry import ConnectorSettings, configured
from tenure.db.engine import Database
from tenure.db.uow import current_actor
from tenure.errors import NotFound, TenureError, ValidationFailed
from tenure.offboarding import actions, flow, rules
from tenure.offboarding.models import OffboardingRun, OffboardingStep, StepAttempt
from tenure.runner import LEASE_SECONDS, RetryPolicy, Runner

PHASES = {
    1: "Inventory",
    2: "Agreement closeout",
    3: "Systems management deactivation",
    4: "Backup deactivation",
    5: "Hosted services transition",
    6: "Service desk closeout",
    7: "Lessons learned and verification",
}


@dataclass(frozen=True)
class Options:
    """How runs are driven: vendor calls, retries, the lease, and who this worker is."""

    connectors: ConnectorSettings = field(default_factory=ConnectorSettings)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    lease_seconds: float = LEASE_SECONDS
    worker: str | None = None


# ------------------------------------------------------------------------------------------ answers


def parse(data: Any, source: str = "answers") -> rules.Answers:
    try:
        return rules.parse_answers(data)
    except rules.InvalidAnswers as exc:
        raise ValidationFailed([f"{source}: {problem}" for problem in exc.problems]) from None


def answers_json(answers: rules.Answers) -> dict[str, Any]:
    contact = answers.new_contact
    return {
        "end_of_service": answers.end_of_service.isoformat(),
        "reason": answers.reason,
        "access": answers.access,
        "agent_deployment": answers.agent_deployment,
        "moving_to": answers.moving_to,
        "new_contact": {"name": contact.name, "email": contact.email} if contact else None,
        "delete_data": answers.delete_data,
    }


def _differences(stored: Mapping[str, Any], answers: rules.Answers) -> list[str]:
    given = answers_json(answers)
    return [
        f"{name} is {stored.get(name)!r} there, {given[name]!r} here"
        for name in rules.ANSWER_FIELDS
        if stored.get(name) != given[name]
    ]


# ------------------------------------------------------------------------------------------ the plan


def inventory(s: Session, client: Client, end: date, settings: ConnectorSettings) -> rules.Inventory:
    """The client as the plan sees it: active devices and accounts, live backup jobs, the agreements still
    running on the end date, and the open tickets."""
    accounts = list(
        s.scalars(
            select(VendorAccount)
            .where(VendorAccount.client_id == client.id, VendorAccount.active)
            .order_by(VendorAccount.key)
        )
    )
    devices = s.scalars(select(Device).where(Device.client_id == client.id, Device.active).order_by(Device.key))
    device_keys = dict(s.execute(select(Device.id, Device.key).where(Device.client_id == client.id)).all())
    jobs = s.scalars(
        select(BackupJob).where(BackupJob.client_id == client.id, BackupJob.status != "retired").order_by(BackupJob.key)
    )
    agreements = s.scalars(
        select(Agreement)
        .where(Agreement.client_id == client.id)
        .where((Agreement.end.is_(None)) | (Agreement.end >= end))
        .order_by(Agreement.key)
    )
    contacts = s.scalars(select(Contact).where(Contact.client_id == client.id).order_by(Contact.id))
    return rules.Inventory(
        client=client.key,
        client_name=client.name,
        contacts=tuple(rules.Contact(c.name, c.email, tuple(c.roles or ())) for c in contacts),
        devices=tuple(
            rules.Device(
                d.key, d.hostname, d.role, tuple(d.features or ()), tuple(d.checks or ()), d.rmm_vendor, d.rmm_id
            )
            for d in devices
        ),
        accounts=tuple(
            rules.VendorAccount(a.key, a.kind, a.vendor, a.external_id, dict(a.details or {}))  # type: ignore[arg-type]
            for a in accounts
        ),
        backup_jobs=tuple(rules.BackupJob(j.key, device_keys.get(j.device_id or 0), j.product, j.name) for j in jobs),
        agreements=tuple(rules.Agreement(a.key, a.kind) for a in agreements),
        open_tickets=actions.open_tickets(s, client.id),
        automatable_vendors=frozenset(
            a.vendor for a in accounts if a.kind in ("rmm", "backup") and configured(a, settings)
        ),
    )


def _client(s: Session, key: str, *, lock: bool = False) -> Client:
    query = select(Client).where(Client.key == key)
    client = s.scalars(query.with_for_update() if lock else query).first()
    if client is None:
        raise NotFound(f"no client {key!r} (see `tenure client list`)")
    return client


def _plan(s: Session, client: Client, answers: rules.Answers, options: Options) -> rules.Plan:
    try:
        return rules.plan(inventory(s, client, answers.end_of_service, options.connectors), answers)
    except ValueError as exc:
        raise TenureError(f"{client.key}: cannot plan the offboarding: {exc}") from None


def make_plan(
    db: Database, client_key: str, data: Any, *, source: str = "answers", options: Options | None = None
) -> rules.Plan:
    answers = parse(data, source)
    with db.reader() as s:
        return _plan(s, _client(s, client_key), answers, options or Options())


# -------------------------------------------------------------------------------------------- a run


def idempotency_key(run_id: int, step_key: str) -> str:
    key = f"{run_id}:{step_key}"
    if len(key) <= 100:
        return key
    return f"{run_id}:{step_key[:40]}#{hashlib.sha256(step_key.encode()).hexdigest()[:40]}"


def _create(s: Session, client: Client, answers: rules.Answers, options: Options, now: datetime) -> OffboardingRun:
    plan = _plan(s, client, answers, options)
    too_long = [step.key for step in plan.steps if len(step.key) > 200]
    if too_long:
        raise TenureError(
            f"{client.key}: step key {too_long[0]!r} is longer than 200 characters: shorten the "
            "device, account or job key in it"
        )
    run = OffboardingRun(
        client_id=client.id,
        state="planned",
        answers=answers_json(answers),
        end_of_service=answers.end_of_service,
        reason=answers.reason,
        created_at=now,
        lessons={},
    )
    s.add(run)
    s.flush()
    s.add_all(
        OffboardingStep(
            run_id=run.id,
            key=step.key,
            position=position,
            phase=step.phase,
            title=step.title[:500],
            kind=step.kind,
            action=step.action,
            depends_on=list(step.depends_on),
            target=step.to_json()["target"],
            instructions=step.instructions,
            seconds=step.seconds,
            state="pending",
            attempts=0,
            idempotency_key=idempotency_key(run.id, step.key),
            result={},
        )
        for position, step in enumerate(plan.steps)
    )
    s.flush()
    return run


def runner(db: Database, options: Options | None = None) -> Runner:
    options = options or Options()
    return Runner(
        db,
        partial(actions.execute, settings=options.connectors),
        flow.advance,
        worker=options.worker,
        policy=options.policy,
        lease_seconds=options.lease_seconds,
    )


def apply(
    db: Database, client_key: str, data: Any | None, *, source: str = "answers", options: Options | None = None
) -> dict[str, Any]:
    """Start the client's run, or continue its open one; run what is due now; the run's status."""
    options = options or Options()
    answers = parse(data, source) if data is not None else None
    now = clock.now()
    with db.unit_of_work() as s:
        client = _client(s, client_key, lock=True)
        runs = list(
            s.scalars(
                select(OffboardingRun).where(OffboardingRun.client_id == client.id).order_by(OffboardingRun.id.desc())
            )
        )
        open_run = next((r for r in runs if r.state != "done"), None)
        finished = None
        if open_run is not None:
            differences = _differences(open_run.answers, answers) if answers is not None else []
            if differences:
                raise TenureError(
                    f"{client_key}'s open offboarding run #{open_run.id} (started {open_run.created_at:%Y-%m-%d}) "
                    f"was started with other answers: {'; '.join(differences)}. "
                    f"Give the same answers (or none) to continue it"
                )
            run_id = open_run.id
        elif runs and (answers is None or not _differences(runs[0].answers, answers)):
            finished = runs[0]  # done already (with these very answers): nothing to do
            run_id = finished.id
        elif answers is None:
            raise TenureError(
                f"{client_key} has no offboarding run: start one with "
                f"`tenure offboard apply {client_key} --answers FILE`"
            )
        else:
            run_id = _create(s, client, answers, options, now).id
        if finished is None:
            flow.advance(s, run_id, now)
    ran = 0 if finished is not None else runner(db, options).run_until_idle(run_id)
    return status(db, client_key) | {"ran": ran}


def work(db: Database, options: Options | None = None) -> int:
    """Every step of every run that is due now (a worker's round); how many steps were run."""
    return runner(db, options).run_until_idle()


# ------------------------------------------------------------------------------------------- status


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def step_json(step: OffboardingStep) -> dict[str, Any]:
    """The plan's step (INTERFACE.md) with its state, attempts and what happened."""
    out: dict[str, Any] = {
        "key": step.key,
        "phase": step.phase,
        "title": step.title,
        "kind": step.kind,
        "depends_on": list(step.depends_on),
        "target": step.target,
        "instructions": step.instructions,
    }
    if step.kind == "wait":
        out["seconds"] = step.seconds
    result = step.result or {}
    out |= {
        "action": step.action,
        "state": step.state,
        "attempts": step.attempts,
        "not_before": _iso(step.not_before),
        "waiting_on": ("person" if flow.on_person(step) else "clock") if step.state == "waiting" else None,
        "error": result.get("error") if step.state in ("waiting", "failed") else None,
        "note": step.note,
        "done_by": step.done_by,
        "done_at": _iso(step.done_at),
        "result": result,
    }
    if step.state == "running":
        out["lease"] = {"owner": step.lease_owner, "until": _iso(step.lease_until)}
    return out


def _attempts_json(s: Session, step_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in step_ids}
    for a in s.scalars(select(StepAttempt).where(StepAttempt.step_id.in_(step_ids)).order_by(StepAttempt.id)):
        found[a.step_id].append(
            {
                "worker": a.worker,
                "started_at": _iso(a.started_at),
                "finished_at": _iso(a.finished_at),
                "outcome": a.outcome,
                "error": a.error,
                "calls": a.calls,
            }
        )
    return found


def status(db: Database, client_key: str, *, with_attempts: bool = False) -> dict[str, Any]:
    """The client's latest run: the plan's shape, each step's state and attempts, and the run's state."""
    with db.reader() as s:
        client = _client(s, client_key)
        run = s.scalars(
            select(OffboardingRun).where(OffboardingRun.client_id == client.id).order_by(OffboardingRun.id.desc())
        ).first()
        if run is None:
            raise NotFound(
                f"{client_key} has no offboarding run: see the plan with "
                f"`tenure offboard plan {client_key} --answers FILE`"
            )
        steps = flow.steps_of(s, run.id)
        attempts = _attempts_json(s, [st.id for st in steps]) if with_attempts else {}
    state = flow.run_state(steps) if steps else run.state
    failed = [st for st in steps if st.state == "failed"]
    clock_waits = [st.not_before for st in steps if st.state == "waiting" and st.not_before is not None]
    out_steps = []
    for st in steps:
        item = step_json(st)
        if with_attempts:
            item["attempt_log"] = attempts[st.id]
        out_steps.append(item)
    return {
        "client": client_key,
        "run": run.id,
        "state": state,
        "end_of_service": run.end_of_service.isoformat(),
        "answers": run.answers,
        "created_at": _iso(run.created_at),
        "completed_at": _iso(run.completed_at),
        "problem": f"{failed[0].key}: {(failed[0].result or {}).get('error')}" if failed else None,
        "waiting_on": [st.key for st in steps if flow.on_person(st)],
        "next_at": _iso(min(clock_waits)) if clock_waits else None,
        "counts": dict(Counter(st.state for st in steps)),
        "steps": out_steps,
    }


# ----------------------------------------------------------------------------------- a person's answer


def _find(s: Session, verb: str, client_key: str | None, step_key: str) -> tuple[OffboardingRun, str]:
    query = (
        select(OffboardingRun, Client.key)
        .join(OffboardingStep, OffboardingStep.run_id == OffboardingRun.id)
        .join(Client, Client.id == OffboardingRun.client_id)
        .where(OffboardingStep.key == step_key, OffboardingRun.state != "done")
    )
    if client_key is not None:
        query = query.where(Client.key == client_key)
    found = s.execute(query).all()
    if len(found) == 1:
        return found[0][0], found[0][1]
    if found:
        keys = sorted({key for _, key in found})
        raise TenureError(
            f"{step_key!r} is a step of the open runs of {', '.join(keys)}: name the client "
            f"(`tenure offboard {verb} {keys[0]} {step_key}`)"
        )
    if client_key is None:
        raise NotFound(f"no open offboarding run has a step {step_key!r} (see `tenure offboard status CLIENT`)")
    client = _client(s, client_key)
    if (
        s.scalar(
            select(func.count())
            .select_from(OffboardingRun)
            .where(OffboardingRun.client_id == client.id, OffboardingRun.state != "done")
        )
        == 0
    ):
        raise NotFound(f"{client_key} has no open offboarding run")
    raise NotFound(
        f"{client_key}'s open offboarding run has no step {step_key!r} (see `tenure offboard status {client_key}`)"
    )


def _ready(step: OffboardingStep, by_key: dict[str, OffboardingStep]) -> None:
    waiting_for = flow.unmet(step, by_key)
    if waiting_for:
        more = f" and {len(waiting_for) - 3} more" if len(waiting_for) > 3 else ""
        raise TenureError(f"{step.key} is not ready: it waits for {', '.join(waiting_for[:3])}{more}")


def _answered(step: OffboardingStep, state: str, note: str | None, now: datetime, result: dict[str, Any]) -> None:
    step.state, step.note, step.done_by, step.done_at = state, note, current_actor(), now
    step.lease_owner = step.lease_until = None
    step.result = {**(step.result or {}), **result}


def _approve(
    s: Session,
    run: OffboardingRun,
    step: OffboardingStep,
    by_key: dict[str, OffboardingStep],
    text: str | None,
    now: datetime,
) -> str:
    if step.kind != "approval":
        raise TenureError(
            f"{step.key} is a {step.kind} step, not an approval"
            + (": tick it off with `tenure offboard done`" if step.kind == "manual" else "")
        )
    if step.state == "done":
        return f"{step.key} was already approved by {step.done_by} on {step.done_at:%Y-%m-%d %H:%M}"
    _ready(step, by_key)
    _answered(step, "done", text, now, {"approved_by": current_actor()})
    return f"approved {step.key}"


def _done(
    s: Session,
    run: OffboardingRun,
    step: OffboardingStep,
    by_key: dict[str, OffboardingStep],
    text: str | None,
    now: datetime,
) -> str:
    if not text or not text.strip():
        raise TenureError(f"done needs --note TEXT: say what was done for {step.key}")
    if step.kind == "approval":
        raise TenureError(f"{step.key} is an approval: `tenure offboard approve` it")
    if step.kind in ("wait", "verify"):
        raise TenureError(
            f"{step.key} is a {step.kind} step, it is not ticked off by hand: "
            + (
                "`tenure offboard retry` it once the conditions are met"
                if step.kind == "verify"
                else "`tenure offboard skip` it with a reason to go on without waiting"
            )
        )
    if step.state == "done":
        return f"{step.key} was already done by {step.done_by} on {step.done_at:%Y-%m-%d %H:%M}"
    if step.state in ("skipped", "running"):
        raise TenureError(f"{step.key} is {step.state}" + (f" by {step.lease_owner}" if step.lease_owner else ""))
    _ready(step, by_key)
    retrying = step.state == "waiting" and step.not_before is not None and (step.result or {}).get("error")
    if step.state == "pending" or (step.state == "waiting" and not flow.on_person(step) and not retrying):
        raise TenureError(
            f"{step.key} is automatic and Tenure does it (`tenure offboard apply`); if it was done "
            "another way, `tenure offboard skip` it with the reason"
        )
    _answered(step, "done", text.strip(), now, {"by_hand": current_actor()})
    message = f"{step.key} done"
    if step.key == "p6.tickets":
        handed = run.answers.get("moving_to") in ("other_msp", "own_it") or bool(run.answers.get("new_contact"))
        closed = actions.close_tickets(s, run.client_id, handed, now)
        message += f"; {closed} open ticket(s) {'handed over' if handed else 'closed'}"
    return message


def _skip(
    s: Session,
    run: OffboardingRun,
    step: OffboardingStep,
    by_key: dict[str, OffboardingStep],
    text: str | None,
    now: datetime,
) -> str:
    if not text or not text.strip():
        raise TenureError(f"skip needs --reason TEXT: say why {step.key} is not done")
    if step.kind == "approval":
        raise TenureError(f"{step.key} is an approval: it is approved, never skipped")
    if step.kind == "verify":
        raise TenureError(f"{step.key} verifies the exit conditions: it cannot be skipped")
    if step.state == "skipped":
        return f"{step.key} was already skipped ({step.note})"
    if step.state in ("done", "running"):
        raise TenureError(f"{step.key} is {step.state}: nothing to skip")
    _answered(step, "skipped", text.strip(), now, {"skipped": text.strip()})
    return f"{step.key} skipped"


def _retry(
    s: Session,
    run: OffboardingRun,
    step: OffboardingStep,
    by_key: dict[str, OffboardingStep],
    text: str | None,
    now: datetime,
) -> str:
    if step.state == "failed":
        step.state, step.attempts = "pending", 0
    elif not (step.state == "waiting" and step.not_before is not None and step.kind != "wait"):
        raise TenureError(f"{step.key} is {step.state}: only a failed step, or one waiting to try again, is retried")
    step.not_before = now
    step.result = {**(step.result or {}), "retried_by": current_actor()}
    return f"{step.key} will be tried again"


ANSWERS: dict[str, Callable[..., str]] = {"approve": _approve, "done": _done, "skip": _skip, "retry": _retry}


def answer(
    db: Database, verb: str, client_key: str | None, step_key: str, text: str | None = None
) -> tuple[dict[str, Any], str]:
    """A person's answer to a step of an open run; the run's status and what changed."""
    now = clock.now()
    with db.unit_of_work() as s:
        found, client_key = _find(s, verb, client_key, step_key)
        run = flow.lock_run(s, found.id)
        steps = flow.steps_of(s, run.id)
        by_key = {st.key: st for st in steps}
        message = ANSWERS[verb](s, run, by_key[step_key], by_key, text, now)
        flow.advance(s, run.id, now)
    return status(db, client_key), f"{client_key}: {message}"

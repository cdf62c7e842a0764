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
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import Agreement
from tenure.bulk import chunks
from tenure.clients.models import BackupJob, Client, Contact, Device, VendorAccount
from tenure.connectors.registry import ConnectorSettings, configured
from tenure.db.engine import Database
from tenure.db.uow import current_actor
from tenure.errors import Conflict, NotFound, TenureError, ValidationFailed
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
        "stop_services_on": answers.stop_services_on.isoformat() if answers.stop_services_on else None,
        "security_account": answers.security_account,
        "closeout": _closeout_json(answers.closeout),
    }


def _closeout_json(closeout: rules.Closeout | None) -> dict[str, Any] | None:
    if closeout is None:
        return None
    return {"date": closeout.held_on.isoformat(), "attended": list(closeout.attended), "notes": closeout.notes}


# what a run started before an answer existed holds for it
_ANSWER_DEFAULTS: dict[str, Any] = {"security_account": "unknown"}


def _differences(stored: Mapping[str, Any], answers: rules.Answers) -> list[str]:
    given = answers_json(answers)
    return [
        f"{name} is {stored.get(name, _ANSWER_DEFAULTS.get(name))!r} there, {given[name]!r} here"
        for name in rules.ANSWER_FIELDS
        if stored.get(name, _ANSWER_DEFAULTS.get(name)) != given[name]
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


def _held_until(target: Mapping[str, Any], zone: Any) -> datetime | None:
    """When a step that ends a paid service may start: the first moment of its `not_before` day, MSP time."""
    day = target.get("not_before")
    return flow.day_start(date.fromisoformat(day), zone) if isinstance(day, str) else None


def _create(
    s: Session, client: Client, answers: rules.Answers, options: Options, now: datetime, owner: str | None = None
) -> OffboardingRun:
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
        owner=(owner or "").strip() or current_actor(),
    )
    s.add(run)
    s.flush()
    zone = flow.msp_zone(s)
    dependants: dict[str, list[str]] = defaultdict(list)
    for step in plan.steps:
        for needed in step.depends_on:
            dependants[needed].append(step.key)
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
            dependants=dependants.get(step.key, []),
            target=step.to_json()["target"],
            instructions=step.instructions,
            seconds=step.seconds,
            state="pending",
            attempts=0,
            idempotency_key=idempotency_key(run.id, step.key),
            result={},
            held_until=_held_until(step.target, zone),
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
    db: Database,
    client_key: str,
    data: Any | None,
    *,
    source: str = "answers",
    options: Options | None = None,
    owner: str | None = None,
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
            run_id = _create(s, client, answers, options, now, owner).id
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
        # when it may start: the clock it waits on, or (a step that ends a paid service) the end of service
        "not_before": _iso(step.not_before if step.not_before is not None else step.held_until),
        "due_before": (step.target or {}).get("due_before"),
        "assignee": step.assignee,
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
    state = run.state  # flow.state_of's answer, kept by flow.advance: what every list and page shows too
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
        "owner": run.owner,
        "closeout": (run.answers or {}).get("closeout"),
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
    refused_until = held(step, now)
    if refused_until:
        raise Conflict(refused_until)
    retrying = step.state == "waiting" and step.not_before is not None and (step.result or {}).get("error")
    held_over = step.state == "waiting" and step.held_until is not None and flow.waits_on_person(step)
    if step.state == "pending" or (
        step.state == "waiting" and not flow.on_person(step) and not retrying and not held_over
    ):
        raise TenureError(
            f"{step.key} is automatic and Tenure does it (`tenure offboard apply`); if it was done "
            "another way, `tenure offboard skip` it with the reason"
        )
    _answered(step, "done", text.strip(), now, {"by_hand": current_actor()})
    message = f"{step.key} done"
    if step.key == "p6.tickets":
        message += "; " + actions.tickets_closeout(s, run, step, now)
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


# ------------------------------------------------------------------------- held to the end of service


def held(step: Any, now: datetime) -> str | None:
    """Why this step may not be done yet, when it ends a service the client pays for before its day."""
    until = step.held_until
    if until is None or now >= until:
        return None
    day = (step.target or {}).get("not_before") or until.date().isoformat()
    return (
        f"{step.key} may not be done before {day}: it ends a service the client pays for until then "
        "(the end of service, or the answers' stop_services_on)"
    )


# --------------------------------------------------------------------------- a run started by the API


def start(
    db: Database, client_key: str, data: Any, owner: str | None = None, *, options: Options | None = None
) -> dict[str, Any]:
    """Start the client's run from answers given as a document (the API, the client's page): every problem
    names its field as `answers.<field>`; a client with an open run is refused. Then as `apply`."""
    try:
        rules.parse_answers(data)
    except rules.InvalidAnswers as exc:
        raise ValidationFailed([f"answers.{problem}" for problem in exc.problems]) from None
    with db.reader() as s:
        client = _client(s, client_key)
        open_run = s.scalar(
            select(OffboardingRun.id).where(OffboardingRun.client_id == client.id, OffboardingRun.state != "done")
        )
    if open_run is not None:
        raise Conflict(f"{client_key} already has an open offboarding run #{open_run}: answer or continue that one")
    return apply(db, client_key, data, options=options, owner=owner)


def run_key(db: Database, run_id: int, *, open_only: bool = True) -> str:
    """The key of the client a run ends service for; refused when the run is finished (`open_only`)."""
    with db.reader() as s:
        found = s.execute(
            select(Client.key, OffboardingRun.state)
            .join(OffboardingRun, OffboardingRun.client_id == Client.id)
            .where(OffboardingRun.id == run_id)
        ).first()
    if found is None:
        raise NotFound(f"no offboarding run #{run_id}")
    if open_only and found[1] == "done":
        raise Conflict(f"offboarding run #{run_id} of {found[0]} is done: nothing left to answer")
    return str(found[0])


def answer_run(db: Database, verb: str, run_id: int, step_key: str, text: str | None = None) -> dict[str, Any]:
    """A person's answer to a step of this very run (the API); what changed and the run's state."""
    now = clock.now()
    client_key = run_key(db, run_id)
    with db.unit_of_work() as s:
        run = flow.lock_run(s, run_id)
        step = s.scalars(
            select(OffboardingStep).where(OffboardingStep.run_id == run_id, OffboardingStep.key == step_key)
        ).first()
        if step is None:
            raise NotFound(f"offboarding run #{run_id} has no step {step_key!r}")
        message = ANSWERS[verb](s, run, step, _with_dependencies(s, run_id, step), text, now)
        state = flow.advance(s, run_id, now)
        out = step_json(step)
    return {"run": run_id, "client": client_key, "state": state, "message": f"{client_key}: {message}", "step": out}


def _with_dependencies(s: Session, run_id: int, step: OffboardingStep) -> dict[str, OffboardingStep]:
    """The step and the steps it depends on, by key: what an answer checks before it is given."""
    needed = step.depends_on or [""]
    deps = s.scalars(select(OffboardingStep).where(OffboardingStep.run_id == run_id, OffboardingStep.key.in_(needed)))
    return {st.key: st for st in deps} | {step.key: step}


# ------------------------------------------------------------------------------- many steps at once


@dataclass(frozen=True)
class Selection:
    """Which steps of a run: named by key, every step of a device, or every step of a phase."""

    keys: tuple[str, ...] = ()
    device: str | None = None
    phase: int | None = None

    def check(self) -> None:
        given = sum(1 for chosen in (self.keys, self.device, self.phase) if chosen)
        if given != 1:
            raise ValidationFailed(["keys: give exactly one of keys, device and phase"])
        if self.phase is not None and not 1 <= self.phase <= 7:
            raise ValidationFailed([f"phase: {self.phase} is not 1 to 7"])

    def described(self) -> str:
        if self.device:
            return f"device {self.device}"
        if self.phase:
            return f"phase {self.phase}"
        return f"{len(self.keys)} step(s)"


_S = OffboardingStep
_BULK_COLUMNS = (
    _S.id,
    _S.key,
    _S.kind,
    _S.state,
    _S.action,
    _S.not_before,
    _S.held_until,
)


def _selected(s: Session, run_id: int, chosen: Selection) -> list[Any]:
    query = select(*_BULK_COLUMNS).where(_S.run_id == run_id)
    if chosen.device:
        rows = list(s.execute(query.where(_S.target["device"].as_string() == chosen.device).order_by(_S.position)))
    elif chosen.phase:
        rows = list(s.execute(query.where(_S.phase == chosen.phase).order_by(_S.position)))
    else:
        rows = []
        for some in chunks(sorted(set(chosen.keys))):
            rows += s.execute(query.where(_S.key.in_(list(some)))).all()
        missing = sorted(set(chosen.keys) - {r.key for r in rows})
        if missing:
            raise NotFound(f"offboarding run #{run_id} has no step {', '.join(map(repr, missing[:5]))}")
    return rows


def _bulk_refusal(verb: str, row: Any, now: datetime, by_name: bool, zone: Any) -> str | None:
    """Why this step cannot be ticked done (or skipped) now; None when it can. `by_name`: the person named it
    (a step waiting to try a vendor again may be ticked done when it was done another way)."""
    if verb == "skip":
        if row.kind in ("approval", "verify"):
            return f"{row.key} is {'an approval' if row.kind == 'approval' else 'the exit verification'}: not skipped"
        return f"{row.key} is {row.state}" if row.state in ("done", "running") else None
    if row.kind in ("approval", "wait", "verify"):
        return f"{row.key} is a{'n' if row.kind[0] == 'a' else ''} {row.kind} step: not ticked done by hand"
    if row.state != "waiting":
        return f"{row.key} is {'not ready' if row.state == 'pending' else row.state}"
    if row.held_until is not None and now < row.held_until:
        return f"{row.key} may not be done before {row.held_until.astimezone(zone).date().isoformat()}"
    person = row.kind in flow.PERSON_KINDS or (row.kind == "notice" and not row.action)
    if row.not_before is None or person or by_name:
        return None
    return f"{row.key} is automatic and waits on the clock"


def bulk(db: Database, verb: str, run_id: int, chosen: Selection, text: str | None) -> dict[str, Any]:
    """Many steps of one run done (or skipped) at once with one note, each recorded with the note, the actor
    and the moment. Named steps: all or nothing. A device's or a phase's steps: those that can be answered
    now, the rest left as they are (and said). One UPDATE per batch of steps, then the run moves on once."""
    if verb not in ("done", "skip"):
        raise TenureError(f"{verb}: only done and skip are given to many steps at once")
    chosen.check()
    field = "note" if verb == "done" else "reason"
    if not text or not text.strip():
        raise ValidationFailed([f"{field}: required: say what was done" if verb == "done" else f"{field}: required"])
    text, now, actor = text.strip(), clock.now(), current_actor()
    client_key = run_key(db, run_id)
    with db.unit_of_work() as s:
        run = flow.lock_run(s, run_id)
        rows = _selected(s, run_id, chosen)
        final = "done" if verb == "done" else "skipped"
        already = [r.key for r in rows if r.state == final]
        todo = [r for r in rows if r.state != final]
        zone = flow.msp_zone(s)
        refusals = {r.key: _bulk_refusal(verb, r, now, bool(chosen.keys), zone) for r in todo}
        refused = [why for why in refusals.values() if why]
        if refused and (chosen.keys or len(refused) == len(todo)):
            more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
            error = Conflict if any("may not be done before" in why for why in refused) else TenureError
            raise error(f"{'; '.join(refused[:3])}{more}: nothing was changed")
        ticked = [r for r in todo if not refusals[r.key]]
        special = [r for r in ticked if verb == "done" and r.key in _ONE_BY_ONE]
        plain = [r.id for r in ticked if r not in special]
        for some in chunks(plain):
            s.execute(
                update(_S)
                .where(_S.id.in_(list(some)))
                .values(state=final, note=text, done_by=actor, done_at=now, lease_owner=None, lease_until=None)
            )
        for row in special:  # a tick that does more than record (open tickets handed over): as one by one
            step = s.get(OffboardingStep, row.id)
            assert step is not None
            _done(s, run, step, _with_dependencies(s, run_id, step), text, now)
        # only the ticked steps' dependants can have become ready (a special tick may finish more: all read)
        state = flow.advance(s, run_id, now, finished=None if special else [r.key for r in ticked])
    keys = [r.key for r in ticked]
    left = [why for why in refused]
    message = (
        f"{client_key}: {len(keys)} step(s) of {chosen.described()} {final}"
        + (f"; {len(already)} already {final}" if already else "")
        + (f"; {len(left)} left as they are ({left[0]}{' …' if len(left) > 1 else ''})" if left else "")
    )
    return {
        "run": run_id,
        "client": client_key,
        "state": state,
        "verb": verb,
        "steps": keys,
        "count": len(keys),
        "already": already,
        "left": left,
        "message": message,
    }


_ONE_BY_ONE = frozenset({"p6.tickets"})  # ticking these does more than record the tick (see `_done`)


def assign(db: Database, run_id: int, chosen: Selection, assignee: str | None) -> dict[str, Any]:
    """Name who is to do these steps (blank: no one); one UPDATE per batch."""
    chosen.check()
    who = (assignee or "").strip() or None
    client_key = run_key(db, run_id)
    with db.unit_of_work() as s:
        flow.lock_run(s, run_id)
        rows = _selected(s, run_id, chosen)
        for some in chunks([r.id for r in rows]):
            s.execute(update(_S).where(_S.id.in_(list(some))).values(assignee=who))
    keys = [r.key for r in rows]
    return {
        "run": run_id,
        "client": client_key,
        "assignee": who,
        "steps": keys,
        "count": len(keys),
        "message": f"{client_key}: {len(keys)} step(s) of {chosen.described()} assigned to {who or 'no one'}",
    }


def run_for(db: Database, client_key: str | None, step_key: str | None) -> int:
    """The open run a command means: the client's, or the one open run with that step."""
    with db.reader() as s:
        if step_key is not None:
            return _find(s, "done", client_key, step_key)[0].id
        client = _client(s, client_key or "")
        found = s.scalar(
            select(OffboardingRun.id).where(OffboardingRun.client_id == client.id, OffboardingRun.state != "done")
        )
    if found is None:
        raise NotFound(f"{client_key} has no open offboarding run")
    return int(found)

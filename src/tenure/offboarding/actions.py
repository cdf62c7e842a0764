"""What each step of a plan does when the runner runs it (its `action`, DOMAIN.md "Offboarding").

- `<vendor>.<verb>`: a vendor call through the client's account at that vendor (connectors/). A vendor
  Tenure cannot drive, or an action its API cannot do, makes the step manual with instructions. A write
  the vendor accepted but that is not visible yet (an uninstall in progress, a client delete refused while
  agents remain) is checked again later with backoff, and fails with the reason when it never happens.
- `notice.*`: a Notice row in the outbox (sending it is the outbox's job), once per step.
- Tenure's own work: the inventory snapshot, ending agreements, the final invoice
  (`billing.service.final_invoice`, which also ends the agreements and settles prepaid time by the MSP's
  policy), retiring backup jobs, stopping maintenance, and the exit conditions (`offboarding.verify_exit`).

Every action is idempotent: run again after a crash, it finds its work done and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from tenure.agreements.models import Agreement
from tenure.billing.models import Invoice
from tenure.billing.service import final_invoice
from tenure.clients.models import BackupJob, Client, Contact, Device, Site, VendorAccount
from tenure.connectors import restic
from tenure.connectors.base import ActionResult, Connector, ConnectorError, NotSupported
from tenure.connectors.manual import ManualConnector, instructions_for
from tenure.connectors.registry import (
    ConnectorSettings,
    HandOverPlan,
    blumira_for,
    configured,
    connector_for,
    handover_of,
)
from tenure.db.locks import hold_inputs
from tenure.errors import TenureError
from tenure.maintenance.models import MaintenanceTask
from tenure.msp.models import MspSettings
from tenure.notices.models import Notice
from tenure.offboarding.flow import TERMINAL
from tenure.offboarding.models import OffboardingRun, OffboardingStep
from tenure.offboarding.rules import EXIT_CONDITIONS, SIEM_ITEMS
from tenure.runner import Outcome, StepContext
from tenure.triage.models import Ticket
from tenure.vocabulary import FEE_KINDS, OPEN_TICKET_STATUSES

# not closed (vocabulary.py), and `open` as tickets were written before the service desk's statuses
OPEN_TICKETS = tuple(dict.fromkeys((*OPEN_TICKET_STATUSES, "open")))
ACCOUNT_VERBS = ("export_copy", "verify_copy", "stop_job", "close_account")  # on a backup account
AGENT_VERBS = (
    "disable_feature", "delete_check", "uninstall_agent", "confirm_agent_removed", "confirm_agent_stopped",
    "delete_agent",
)


def execute(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    step = ctx.step
    if step.kind == "wait":
        return Outcome.done({"detail": f"waited {step.seconds} seconds"})
    if not step.action:
        return Outcome.manual(step.instructions or step.title)
    own = INTERNAL.get(step.action)
    if own is not None:
        return own(ctx, settings)
    prefix, _, verb = step.action.partition(".")
    if prefix == "notice":
        return notice(ctx)
    if prefix == "restic" and verb in ACCOUNT_VERBS:
        return restic_step(ctx, verb, settings)
    return vendor_action(ctx, prefix, verb, settings)


# ------------------------------------------------------------------------------------------ loading


def _run_and_client(s: Session, ctx: StepContext) -> tuple[OffboardingRun, Client]:
    run = s.get(OffboardingRun, ctx.step.run_id)
    if run is None:
        raise TenureError(f"offboarding run {ctx.step.run_id} no longer exists")
    client = s.get(Client, run.client_id)
    assert client is not None
    return run, client


# read before every vendor step: built once (building a statement costs more than running it)
_CLIENT_OF_RUN = select(OffboardingRun.client_id).where(OffboardingRun.id == bindparam("run_id"))
_ACCOUNTS = (
    select(VendorAccount)
    .where(VendorAccount.client_id == bindparam("client_id"), VendorAccount.active)
    .order_by(VendorAccount.key)
)


def _client_id(s: Session, ctx: StepContext) -> int:
    """The run's client, without loading the run or the client."""
    client_id = s.scalar(_CLIENT_OF_RUN, {"run_id": ctx.step.run_id})
    if client_id is None:
        raise TenureError(f"offboarding run {ctx.step.run_id} no longer exists")
    return int(client_id)


def _accounts(s: Session, client_id: int) -> list[VendorAccount]:
    return list(s.scalars(_ACCOUNTS, {"client_id": client_id}))


def _rmm_account(accounts: list[VendorAccount], vendor: str) -> VendorAccount | None:
    """The client's account at an RMM: the first active one of that vendor, by key."""
    return next((a for a in accounts if a.kind == "rmm" and a.vendor == vendor), None)


# ------------------------------------------------------------------------------------------ vendors


def vendor_action(ctx: StepContext, vendor: str, verb: str, settings: ConnectorSettings) -> Outcome:
    """`<vendor>.<verb>` through the client's account there; any vendor call Tenure cannot make (no
    connector, no URL or key, an action the API lacks) becomes a person's, with instructions."""
    step, target = ctx.step, ctx.step.target
    with ctx.db.reader() as s:
        accounts = _accounts(s, _client_id(s, ctx))
        since = _uninstalled_at(s, ctx) if verb == "confirm_agent_stopped" else None
    if verb in ACCOUNT_VERBS:
        account = next((a for a in accounts if a.key == target.get("account")), None)
    else:
        account = _rmm_account(accounts, vendor)
    agent = str(target.get("rmm_id") or "")
    client_ref = str(account.external_id or "") if account is not None else ""
    calls: dict[str, Callable[[Connector], ActionResult]] = {
        "disable_feature": lambda c: c.disable_feature(agent, str(target.get("feature")), key=ctx.key),
        "delete_check": lambda c: c.delete_check(agent, str(target.get("check")), key=ctx.key),
        "uninstall_agent": lambda c: c.uninstall_agent(client_ref, agent, key=ctx.key),
        "confirm_agent_removed": lambda c: c.confirm_agent_removed(client_ref, agent),
        "confirm_agent_stopped": lambda c: c.confirm_agent_stopped(client_ref, agent, since or ctx.now),
        "delete_agent": lambda c: c.delete_agent(client_ref, agent, key=ctx.key),
        "remove_client": lambda c: c.remove_client(str(target.get("external_id") or client_ref), key=ctx.key),
        "export_copy": lambda c: c.export_backup(str(target.get("external_id") or ""), target, key=ctx.key),
    }
    try:
        with closing(connector_for(vendor, account, settings, ctx.calls, ctx.http)) as connector:
            call = calls.get(verb)
            if call is None:
                raise NotSupported(f"Tenure has no {vendor} call for {verb}", "")
            if not isinstance(connector, ManualConnector):
                if not client_ref:
                    raise ConnectorError(
                        f"vendor account {account.key if account else '?'} has no external_id "
                        f"(the client's id at {vendor})",
                        retryable=False,
                    )
                if verb in AGENT_VERBS and not agent:
                    raise NotSupported(f"no {vendor} agent id recorded for {target.get('hostname')}", "")
            outcome = call(connector)
    except NotSupported as exc:
        return Outcome.manual(instructions_for(vendor, verb, target, step.title), {"detail": str(exc)})
    if outcome.done:
        return Outcome.done(outcome.as_json())
    return Outcome.retry(outcome.detail, outcome.as_json(), give_up=GIVE_UP.get(verb))


def _uninstalled_at(s: Session, ctx: StepContext) -> datetime | None:
    """When the uninstall this step confirms was done (the step named by the target's `uninstalled_by`)."""
    key = ctx.step.target.get("uninstalled_by")
    if not key:
        return None
    return s.scalar(
        select(OffboardingStep.done_at).where(OffboardingStep.run_id == ctx.step.run_id, OffboardingStep.key == key)
    )


GIVE_UP = {
    "uninstall_agent": "The uninstall never completed: remove the agent by hand, then mark this step done "
    "(`tenure offboard done CLIENT STEP --note ...`)",
    "confirm_agent_removed": "The agent never went away: uninstall it by hand, then mark this step done",
    "confirm_agent_stopped": "The agent kept reporting after its uninstall: uninstall it by hand on the machine, "
    "then `tenure offboard retry CLIENT STEP` (or mark this step done, saying how you know)",
    "delete_agent": "Delete the agent in the RMM's dashboard, then mark this step done",
    "remove_client": "Delete what remains under the client in the RMM, then `tenure offboard retry CLIENT STEP`",
    "disable_feature": "Turn it off by hand, then mark this step done",
    "delete_check": "Delete it by hand, then mark this step done",
}


# ------------------------------------------------------------------------------- restic: the hand-over


def _copy_state(plan: HandOverPlan) -> restic.HandOver:
    """The client's copy checked (`restic check`) and counted against the MSP's snapshots of the client."""
    restic.check(plan.target)
    wanted, have = len(restic.snapshots(plan.source, *plan.filters)), len(restic.snapshots(plan.target))
    return restic.HandOver(wanted, have, have >= wanted)


def restic_step(ctx: StepContext, verb: str, settings: ConnectorSettings) -> Outcome:
    with restic.recorded(ctx.calls):  # each restic command lands in the step's attempt, as API calls do
        return _restic_step(ctx, verb, settings)


def _restic_step(ctx: StepContext, verb: str, settings: ConnectorSettings) -> Outcome:
    """Phase 4 on a restic backup account (connectors.registry.handover_of says where the copy goes):
    `export_copy` copies the client's snapshots into its own repository (restic.hand_over: copy, check,
    count); `verify_copy` checks and counts it again; `close_account` forgets the MSP's snapshots of the
    client, only once the copy is verified, the answers allow deleting data and the end of service is
    reached. `stop_job` (the schedule lives on the client's machine) and anything without a destination
    stay with a person, with instructions."""
    step, target = ctx.step, ctx.step.target
    manual = instructions_for("restic", verb, target, step.title)
    if verb == "stop_job":
        host = target.get("hostname") or target.get("device") or "the backed-up machine"
        return Outcome.manual(
            f"restic runs from {host}'s own schedule: disable the scheduled `restic backup` of job "
            f"'{target.get('name') or target.get('job')}' there (cron, systemd timer or Task Scheduler) and "
            "remove our repository's password from it. Note what was done and when."
        )
    with ctx.db.reader() as s:
        _, client = _run_and_client(s, ctx)
        account = s.scalars(
            select(VendorAccount).where(
                VendorAccount.client_id == client.id, VendorAccount.key == target.get("account")
            )
        ).first()
    try:
        plan = handover_of(account) if account is not None else None
    except TenureError as exc:
        return Outcome.manual(manual, {"detail": str(exc)})
    if plan is None:
        return Outcome.manual(
            manual,
            {"detail": "no hand-over destination: the account needs its password (`tenure account set-secret`) "
             "and details.handover_repository"},
        )
    where = {"repository": plan.target.location, "filters": list(plan.filters)}
    try:
        if verb == "export_copy":
            copied = restic.hand_over(plan.source, plan.target, *plan.filters)
            if not copied.verified:
                return Outcome.retry(
                    f"the copy holds {copied.snapshots_in_copy} of {copied.snapshots_in_source} snapshots",
                    {**where, **copied.as_json()},
                )
            return Outcome.done({**where, **copied.as_json(),
                                 "detail": f"{copied.snapshots_in_copy} snapshot(s) copied to {plan.target.location}"})
        state = _copy_state(plan)
        if verb == "verify_copy":
            if not state.verified:
                return Outcome.retry(
                    f"the copy holds {state.snapshots_in_copy} of {state.snapshots_in_source} snapshots",
                    {**where, **state.as_json()},
                    give_up="Copy again (`tenure offboard retry CLIENT p4.handover.ACCOUNT`), then retry this step",
                )
            return Outcome.done({**where, **state.as_json(), "detail": "the copy passes restic check, nothing missing"})
        # close_account
        if not target.get("delete_data"):
            return Outcome.manual(
                "The client did not allow deleting its data: the MSP's snapshots stay (read-only until the "
                f"agreement's retention ends). {manual}",
                {**where, **state.as_json(), "detail": "nothing forgotten: deletion not allowed"},
            )
        not_before = str(target.get("not_before") or "")
        if not_before and ctx.now.date().isoformat() < not_before:
            return Outcome.manual(
                f"The client's snapshots may be forgotten from {not_before}, the end of service: then retry this "
                f"step (`tenure offboard retry CLIENT {step.key}`), or forget them by hand.",
                {**where, **state.as_json(), "detail": f"nothing forgotten before {not_before}"},
            )
        forgotten = restic.forget(plan.source, *plan.filters, verified=state, delete_allowed=True)
    except restic.ResticError as exc:
        return Outcome.retry(str(exc), where, give_up="Fix the repository named, then retry this step")
    return Outcome.done({**where, **state.as_json(), "forgotten": forgotten,
                         "detail": f"{forgotten} snapshot(s) of the client forgotten from our repository"})


# ------------------------------------------------------------------------------------------ notices


def _addresses(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value if v]


def _device_lines(s: Session, client_id: int) -> list[str]:
    sites = dict(s.execute(select(Site.id, Site.name).where(Site.client_id == client_id)).all())
    lines = []
    for d in s.scalars(select(Device).where(Device.client_id == client_id).order_by(Device.key)):
        where = f", {sites[d.site_id]}" if d.site_id in sites else ""
        seen = f", last seen {d.last_seen:%Y-%m-%d}" if d.last_seen else ""
        lines.append(f"- {d.hostname} ({d.role}, {d.os or 'unknown OS'}{where}{seen})")
    return lines or ["- no devices on record"]


def _compose(s: Session, ctx: StepContext, run: OffboardingRun, client: Client) -> tuple[str, str, str]:
    """(kind, subject, body) of the notice a step records."""
    step, target, end = ctx.step, ctx.step.target, run.end_of_service.isoformat()
    action = step.action or ""
    if action == "notice.vendor_deprovision":
        return "vendor", str(target.get("subject") or step.title), str(target.get("email") or step.instructions)
    if action == "notice.antivirus_removal":
        return "antivirus", f"{client.name}: install your own antivirus before {end}", step.instructions or step.title
    if action == "notice.final_asset_report":
        body = (
            f"Hello,\n\nOur service for {client.name} ends on {end}. These are the devices we managed for "
            "you, for your records and for whoever looks after them next:\n\n"
            + "\n".join(_device_lines(s, client.id))
            + "\n\nLicenses bought through us are listed separately with what happens to each.\n"
        )
        return "handover", f"{client.name}: final IT asset report", body
    if action == "notice.final_health_report":
        jobs = [
            f"- backup job {j.name}: last result {j.last_status or 'none'}"
            + (f" on {j.last_result_at:%Y-%m-%d}" if j.last_result_at else "")
            for j in s.scalars(select(BackupJob).where(BackupJob.client_id == client.id).order_by(BackupJob.key))
        ]
        body = (
            f"Hello,\n\nAs our service for {client.name} ends on {end}, this is the last state we saw of your "
            "systems:\n\n" + "\n".join(_device_lines(s, client.id) + jobs) + "\n"
        )
        return "handover", f"{client.name}: final system health report", body
    return "handover", step.title, step.instructions or step.title


def notice(ctx: StepContext) -> Outcome:
    step, target = ctx.step, ctx.step.target
    dedupe = f"offboarding:{step.idempotency_key}"
    with ctx.db.unit_of_work() as s:
        existing = s.scalars(select(Notice.id).where(Notice.dedupe_key == dedupe)).first()
        if existing is not None:
            return Outcome.done({"notice": existing, "detail": "already in the outbox"})
        run, client = _run_and_client(s, ctx)
        to = _addresses(target.get("to"))
        if not to:
            return Outcome.manual(
                f"Nobody to send this to ({client.name} has no contact with an e-mail address): tell them "
                f"yourself, then mark this step done.\n\n{step.instructions or step.title}"
            )
        kind, subject, body = _compose(s, ctx, run, client)
        row = Notice(
            client_id=client.id,
            kind=kind,
            dedupe_key=dedupe,
            to=to,
            cc=_addresses(target.get("cc")),
            subject=subject[:300],
            body_text=body,
            data={"run": run.id, "step": step.key},
            state="waiting",
            created_at=ctx.now,
        )
        s.add(row)
        s.flush()
        return Outcome.done({"notice": row.id, "to": to, "subject": row.subject, "detail": "recorded in the outbox"})


# ------------------------------------------------------------------------------------- Tenure's own


def snapshot(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    with ctx.db.reader() as s:
        _, client = _run_and_client(s, ctx)
        devices = [
            {
                "key": d.key,
                "hostname": d.hostname,
                "role": d.role,
                "os": d.os,
                "features": list(d.features),
                "checks": list(d.checks),
                "rmm_vendor": d.rmm_vendor,
                "rmm_id": d.rmm_id,
            }
            for d in s.scalars(select(Device).where(Device.client_id == client.id, Device.active).order_by(Device.key))
        ]
        accounts = _accounts(s, client.id)
        jobs = [
            {"key": j.key, "product": j.product, "name": j.name, "status": j.status}
            for j in s.scalars(select(BackupJob).where(BackupJob.client_id == client.id).order_by(BackupJob.key))
        ]
        agreements = [
            {"key": a.key, "kind": a.kind, "start": a.start.isoformat(), "end": a.end.isoformat() if a.end else None}
            for a in s.scalars(select(Agreement).where(Agreement.client_id == client.id).order_by(Agreement.key))
        ]
    vendors: dict[str, Any] = {}
    for account in accounts:
        if account.kind == "rmm" and configured(account, settings) and account.external_id:
            with closing(connector_for(account.vendor, account, settings, ctx.calls, ctx.http)) as connector:
                vendors[account.key] = connector.list_inventory(account.external_id)
    return Outcome.done(
        {
            "detail": f"{len(devices)} device(s), {len(accounts)} vendor account(s), {len(jobs)} backup job(s)",
            "taken_at": ctx.now.isoformat(),
            "devices": devices,
            "accounts": [
                {
                    "key": a.key,
                    "kind": a.kind,
                    "vendor": a.vendor,
                    "external_id": a.external_id,
                    "details": dict(a.details or {}),
                }
                for a in accounts
            ],
            "backup_jobs": jobs,
            "agreements": agreements,
            "vendors": vendors,
        }
    )


def _end_agreements(s: Session, client: Client, end: date, only: str | None = None) -> list[dict[str, Any]]:
    query = select(Agreement).where(Agreement.client_id == client.id).order_by(Agreement.key)
    query = query.where(Agreement.key == only) if only else query.where(Agreement.kind.in_(FEE_KINDS))
    ended = []
    for agreement in s.scalars(query):
        if agreement.start > end:
            raise TenureError(
                f"agreement {agreement.key} starts {agreement.start}, after the end of service {end}: "
                "end or remove it first"
            )
        was = agreement.end
        if was is None or was > end:
            agreement.end = end  # in the change log, with who ended it
        ended.append({"agreement": agreement.key, "end": end.isoformat(), "was": was.isoformat() if was else None})
    return ended


def end_agreement(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    with ctx.db.unit_of_work() as s:
        hold_inputs(s)  # what a billing run reads (tenure.db.locks)
        run, client = _run_and_client(s, ctx)
        ended = _end_agreements(s, client, run.end_of_service, only=str(ctx.step.target.get("agreement")))
    if not ended:
        return Outcome.done({"detail": f"agreement {ctx.step.target.get('agreement')} no longer exists"})
    return Outcome.done({**ended[0], "detail": f"ends on {run.end_of_service}"})


def stop_recurring(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    with ctx.db.unit_of_work() as s:
        hold_inputs(s)  # what a billing run reads (tenure.db.locks)
        run, client = _run_and_client(s, ctx)
        ended = _end_agreements(s, client, run.end_of_service)
    return Outcome.done(
        {
            "agreements": ended,
            "detail": f"no fee-bearing agreement runs past {run.end_of_service}: recurring billing stops",
        }
    )


def settle_prepaid(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    with ctx.db.reader() as s:
        policy = s.scalars(select(MspSettings.unused_prepaid).limit(1)).first() or "refund"
    return Outcome.done(
        {"policy": policy, "detail": f"unused prepaid time and retainer are settled ({policy}) on the final invoice"}
    )


def issue_final_invoice(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    with ctx.db.reader() as s:
        run, client = _run_and_client(s, ctx)
        key, end = client.key, run.end_of_service
    invoice = final_invoice(ctx.db, key, end)  # idempotent per client: a second call returns the first
    return Outcome.done(
        {
            "invoice": invoice["number"],
            "total": invoice["total"],
            "date": invoice["date"],
            "detail": f"final invoice {invoice['number']} for {invoice['total']}",
        }
    )


def retire_job(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    with ctx.db.unit_of_work() as s:
        _, client = _run_and_client(s, ctx)
        job = s.scalars(
            select(BackupJob).where(BackupJob.client_id == client.id, BackupJob.key == ctx.step.target.get("job"))
        ).first()
        if job is None:
            return Outcome.done({"detail": f"backup job {ctx.step.target.get('job')} no longer exists"})
        if job.status != "retired":
            job.status, job.next_expected_at = "retired", None  # no missed-backup alert from now on
    return Outcome.done({"job": job.key, "status": "retired", "detail": "backup monitoring ended"})


def stop_maintenance(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    """The client's whole plan stops: its own tasks are switched off, and each default task (of any agreement
    kind) gets an inactive task of the client's own, which replaces it for this client alone
    (maintenance.rules.effective_plan). The defaults are written first, so none appears later unstopped."""
    from tenure.maintenance.service import ensure_default_plan  # maintenance imports triage, not offboarding

    ensure_default_plan(ctx.db)
    with ctx.db.unit_of_work() as s:
        _, client = _run_and_client(s, ctx)
        own = list(s.scalars(select(MaintenanceTask).where(MaintenanceTask.client_id == client.id)))
        stopped = [task.key for task in own if task.active]
        for task in own:
            task.active = False
        overridden = {(task.agreement_kind, task.key) for task in own}
        for default in s.scalars(
            select(MaintenanceTask).where(MaintenanceTask.client_id.is_(None)).order_by(MaintenanceTask.id)
        ):
            if (default.agreement_kind, default.key) in overridden or not default.active:
                continue
            s.add(MaintenanceTask(
                client_id=client.id, agreement_kind=default.agreement_kind, key=default.key, title=default.title,
                service=default.service, schedule=default.schedule, estimate_minutes=default.estimate_minutes,
                active=False,
            ))
            overridden.add((default.agreement_kind, default.key))
            stopped.append(default.key)
    return Outcome.done({"stopped": len(stopped), "tasks": sorted(set(stopped)),
                         "detail": f"{len(stopped)} maintenance task(s) stopped, the default plan's included"})


def orphan_alerts(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    return Outcome.done(
        {
            "detail": "once this run is done the client is `former`, and triage decides its alerts "
            "`orphaned` (a deactivation issue to look at)"
        }
    )


# ------------------------------------------------------------------------------------- verification


def _steps_condition(steps: list[OffboardingStep], *families: str) -> tuple[bool, str]:
    """Whether every step of these families (a key, or a key followed by `.<something>`) is done or skipped."""
    mine = [s for s in steps if any(s.key == f or s.key.startswith(f + ".") for f in families)]
    open_ = [s.key for s in mine if s.state not in TERMINAL]
    skipped = [f"{s.key} (skipped: {s.note})" for s in mine if s.state == "skipped"]
    if open_:
        return False, "not done: " + ", ".join(open_)
    detail = f"{len(mine)} step(s) done" if mine else "nothing to do"
    return True, detail + (("; " + "; ".join(skipped)) if skipped else "")


def verify(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    """The exit conditions (seed 003) against the data and the vendors; any unmet keeps the run open."""
    target = ctx.step.target
    with ctx.db.reader() as s:
        run, client = _run_and_client(s, ctx)
        end = run.end_of_service
        steps = list(
            s.scalars(
                select(OffboardingStep).where(OffboardingStep.run_id == run.id, OffboardingStep.id != ctx.step.id)
            )
        )
        accounts = {a.key: a for a in s.scalars(select(VendorAccount).where(VendorAccount.client_id == client.id))}
        running_fees = [
            a.key
            for a in s.scalars(select(Agreement).where(Agreement.client_id == client.id, Agreement.kind.in_(FEE_KINDS)))
            if a.end is None or a.end > end
        ]
        final = _final_invoice(s, client.id)
        reports = _reports_sent(s, run.id, steps)
        desk = _desk_told(s, run.id, steps)
        keep = _who_stays(s, run, client)
        tickets = list(
            s.execute(
                select(Ticket.id, Ticket.title)
                .where(Ticket.client_id == client.id, Ticket.status.in_(OPEN_TICKETS))
                .order_by(Ticket.id)
            ).all()
        )
    conditions: dict[str, dict[str, Any]] = {}

    def check(name: str, ok: bool, detail: str, known_by: dict[str, Any] | None = None) -> None:
        conditions[name] = {"ok": ok, "detail": detail} | ({"known_by": known_by} if known_by else {})

    # the RMMs we can read: nothing listed for the client, and the client itself gone
    listed: list[str] = []
    still_there: list[str] = []
    asked: list[str] = []
    for key in target.get("rmm_accounts") or []:
        account = accounts.get(key)
        if account is None or not configured(account, settings) or not account.external_id:
            continue
        with closing(connector_for(account.vendor, account, settings, ctx.calls, ctx.http)) as connector:
            asked.append(f"{account.vendor} ({key})")
            if connector.client_exists(account.external_id):
                still_there.append(f"{key} (client {account.external_id})")
            listed += [f"{a.get('hostname')} ({a.get('agent_id')})" for a in connector.list_agents(account.external_id)]
    ok, detail = _steps_condition(
        steps, "p3.uninstall", "p3.uninstall-verify", "p3.agent-delete", "p3.orphan", "p3.gpo-uninstall",
        "p3.gpo-cleanup",
    )
    asked_too = f"; asked {', '.join(asked)}" if asked else ""
    agent_steps = ("p3.uninstall", "p3.uninstall-verify", "p3.agent-delete", "p3.orphan", "p3.gpo-uninstall")
    check(
        "no_agents_reporting",
        ok and not listed,
        f"the RMM still lists {', '.join(listed)}" if listed else detail + asked_too,
        _known_by(steps, agent_steps, asked),
    )
    check("no_checks", *_steps_condition(steps, "p3.check-delete"), _known_by(steps, ("p3.check-delete",), []))
    ok, detail = _steps_condition(steps, "p3.rmm-remove")
    check(
        "client_removed_from_rmm",
        ok and not still_there,
        f"still in {', '.join(still_there)}" if still_there else detail + asked_too,
        _known_by(steps, ("p3.rmm-remove",), asked),
    )
    check(
        "no_recurring_charge_after_end",
        not running_fees,
        f"agreements running past {end}: {', '.join(running_fees)}" if running_fees else f"every fee ends by {end}",
    )
    check("final_invoice_sent", *final)
    check("final_reports_sent", *reports)
    check("service_desk_told", *desk)
    emptied = []
    for key in target.get("vendor_accounts") or []:
        account = accounts.get(key)
        if account is not None and account.kind == "siem":
            read = _blumira_emptied(ctx, settings, account, keep)
            if read is not None:
                emptied.append(read)
            if all(not (account.details or {}).get(item) for item in SIEM_ITEMS):
                continue
            emptied.append(_steps_condition(steps, f"p3.siem-remove.{key}"))
        emptied.append(_steps_condition(steps, f"p3.account-close.{key}", f"p4.account-close.{key}"))
    check(
        "vendor_accounts_emptied",
        all(ok for ok, _ in emptied),
        "; ".join(d for ok, d in emptied if not ok) or "every vendor account emptied or closed",
    )
    check("backups_handed_over", *_steps_condition(steps, "p4.handover-verify"))
    check("hosted_services_transferred", *_steps_condition(steps, "p5.transition"))
    check("credentials_handed_over", *_steps_condition(steps, "p6.credentials"))
    check("lessons_captured", *_steps_condition(steps, "p7.lessons"))
    check(
        "no_open_tickets",
        not tickets,
        f"{len(tickets)} open: " + ", ".join(f"#{i} {t}" for i, t in tickets) if tickets else "none open",
    )
    result = {"conditions": {name: conditions[name] for name in EXIT_CONDITIONS if name in conditions}}
    failing = [f"{name}: {c['detail']}" for name, c in result["conditions"].items() if not c["ok"]]
    if failing:
        return Outcome.retry(
            "exit conditions not met: " + "; ".join(failing),
            result,
            give_up="Fix what is listed, then `tenure offboard retry CLIENT p7.verify`",
        )
    return Outcome.done({**result, "detail": f"all {len(conditions)} exit conditions met on {ctx.now:%Y-%m-%d}"})


def _known_by(steps: list[OffboardingStep], families: tuple[str, ...], asked: list[str]) -> dict[str, Any]:
    """How Tenure knows systems management is off: the RMM's own answer (a read now, `asked`; a vendor call
    a step made) and the steps a person ticked, with who ticked them."""
    mine = [s for s in steps if any(s.key == f or s.key.startswith(f + ".") for f in families)]
    by_person = [s for s in mine if s.state == "skipped" or (s.state == "done" and (s.result or {}).get("by_hand"))]
    by_rmm = [s.key for s in mine if s.state == "done" and s not in by_person]
    ticked = [s.key for s in by_person]
    ticked_by = sorted({str(s.done_by) for s in by_person})
    if asked or by_rmm:
        source = "rmm_and_person" if ticked else "rmm"
    else:
        source = "person" if ticked else "nothing_to_do"
    return {"source": source, "rmm": asked, "rmm_steps": len(by_rmm), "ticked": ticked, "ticked_by": ticked_by}


def _final_invoice(s: Session, client_id: int) -> tuple[bool, str]:
    """Seed 003: "Final invoice for services has been provided to the client": issued (not a draft) and sent."""
    invoice = s.scalars(
        select(Invoice).where(Invoice.client_id == client_id, Invoice.kind == "final", Invoice.status != "void")
    ).first()
    if invoice is None:
        return False, "no final invoice"
    if invoice.status == "draft":
        return False, f"final invoice {invoice.number} is a draft: issue it and send it to the client"
    sent = _invoice_sent_at(s, invoice)
    if sent is None:
        return False, f"final invoice {invoice.number} is {invoice.status} but not sent to the client yet"
    return True, f"final invoice {invoice.number} {invoice.status}, sent {sent:%Y-%m-%d}"


def _invoice_sent_at(s: Session, invoice: Invoice) -> datetime | None:
    """When the invoice first reached the client: its mail (billing/mailing.py: an `invoice_mail` record per
    mailing, its notice sent by the outbox), or an invoice's own `sent_at` where it has one."""
    own = getattr(invoice, "sent_at", None)
    if own is not None:
        return own  # type: ignore[no-any-return]
    try:
        from tenure.billing.models import InvoiceMail  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - before invoices were mailed
        return None
    return s.scalar(
        select(func.min(Notice.sent_at))
        .join(InvoiceMail, InvoiceMail.notice_id == Notice.id)
        .where(InvoiceMail.invoice_id == invoice.id, InvoiceMail.kind.in_(("issued", "again")), Notice.state == "sent")
    )


def _notice_condition(
    s: Session, run_id: int, steps: list[OffboardingStep], keys: list[str], internal: bool = False
) -> tuple[bool, str]:
    """Each of these notice steps is sent by the outbox (or, with nobody to mail it to, done by a person)."""
    by_key = {st.key: st for st in steps}
    dedupe = {f"offboarding:{by_key[k].idempotency_key}": k for k in keys if k in by_key}
    found = {dedupe[n.dedupe_key]: n for n in s.scalars(select(Notice).where(Notice.dedupe_key.in_(list(dedupe))))}
    problems, fine = [], []
    for key in keys:
        step, notice = by_key.get(key), found.get(key)
        if step is None:
            continue
        if notice is not None and notice.state == "sent":
            fine.append(f"{key} sent {notice.sent_at:%Y-%m-%d}" if notice.sent_at else f"{key} sent")
        elif notice is not None and internal and notice.state == "kept":  # staff read it in Tenure
            fine.append(f"{key}: notice #{notice.id} on record for staff (no staff address to mail it to)")
        elif notice is not None:
            problems.append(f"{key}: notice #{notice.id} is {notice.state} in the outbox, not sent")
        elif step.state == "skipped" or (step.state == "done" and (step.result or {}).get("by_hand")):
            fine.append(f"{key} {step.state} by {step.done_by}: {step.note}")
        else:
            problems.append(f"{key}: not sent")
    if problems:
        return False, "; ".join(problems)
    return True, "; ".join(fine) or "nothing to send"


def _reports_sent(s: Session, run_id: int, steps: list[OffboardingStep]) -> tuple[bool, str]:
    """Seed 003: "Final IT asset and system health reports have been provided to the client"."""
    return _notice_condition(s, run_id, steps, ["p1.asset-report", "p6.health-report"])


def _desk_told(s: Session, run_id: int, steps: list[OffboardingStep]) -> tuple[bool, str]:
    """Seed 003: "The service desk team is aware that affected services have been deactivated"."""
    return _notice_condition(s, run_id, steps, ["p6.tickets"], internal=True)


def _who_stays(s: Session, run: OffboardingRun, client: Client) -> list[str]:
    """The e-mails a vendor account may still list as users: the incoming administrator when it moves (the
    answers' new contact, else the client's administrators)."""
    answers = run.answers or {}
    if answers.get("moving_to") not in ("other_msp", "own_it"):
        return []
    email = (answers.get("new_contact") or {}).get("email")
    if email:
        return [str(email)]
    contacts = s.scalars(select(Contact).where(Contact.client_id == client.id))
    return [c.email for c in contacts if c.email and "admin" in (c.roles or [])]


def _blumira_emptied(
    ctx: StepContext, settings: ConnectorSettings, account: VendorAccount, keep: list[str]
) -> tuple[bool, str] | None:
    """Blumira read back (connectors/blumira.py): no agent device, no user but who stays. None without
    credentials: the manual removal steps' ticks are all there is."""
    reader = blumira_for(account, settings, ctx.calls)
    if reader is None:
        return None
    try:
        with closing(reader):
            left = reader.leftovers(keep)
    except ConnectorError as exc:
        return False, f"could not read Blumira ({account.key}): {exc}"
    if left.empty:
        return True, f"Blumira ({account.key}) lists {left.describe()}"
    return False, f"Blumira ({account.key}) still lists {left.describe()}"


def record_closeout(ctx: StepContext, settings: ConnectorSettings) -> Outcome:
    """Seed 003's entry condition, given in the answers: the closeout session, recorded as they say it."""
    target = ctx.step.target
    attended = ", ".join(target.get("attended") or [])
    return Outcome.done({"closeout": dict(target), "detail": f"held on {target.get('date')} with {attended}"})


INTERNAL: dict[str, Callable[[StepContext, ConnectorSettings], Outcome]] = {
    "offboarding.closeout": record_closeout,
    "inventory.snapshot": snapshot,
    "agreements.end": end_agreement,
    "billing.stop_recurring": stop_recurring,
    "billing.settle_prepaid": settle_prepaid,
    "billing.final_invoice": issue_final_invoice,
    "backup.retire_job": retire_job,
    "maintenance.stop": stop_maintenance,
    "triage.orphan_client": orphan_alerts,
    "offboarding.verify_exit": verify,
}


def close_tickets(s: Session, client_id: int, handed_over: bool, now: datetime) -> int:
    """What a person's tick of `p6.tickets` means for Tenure's own tickets: none stays open (a ticket handed
    over is closed here; the service desk's notice says to whom it went)."""
    return len(_close_tickets(s, client_id, now))


def _close_tickets(s: Session, client_id: int, now: datetime) -> list[Ticket]:
    tickets = list(
        s.scalars(
            select(Ticket).where(Ticket.client_id == client_id, Ticket.status.in_(OPEN_TICKETS)).order_by(Ticket.id)
        )
    )
    for ticket in tickets:
        ticket.status, ticket.closed_at = "closed", now
    return tickets


def tickets_closeout(s: Session, run: OffboardingRun, step: OffboardingStep, now: datetime) -> str:
    """A person's tick of `p6.tickets`: the client's open tickets are closed or handed over to whoever takes
    over, and the service desk is told, by an internal notice in the outbox (seed 003: "the service desk team
    is aware that affected services have been deactivated"). Once per run (the notice's dedupe key)."""
    from tenure.notices.mailer import staff_addresses

    answers = run.answers or {}
    contact = answers.get("new_contact") or {}
    handed = answers.get("moving_to") in ("other_msp", "own_it") or bool(contact)
    client = s.get(Client, run.client_id)
    assert client is not None
    tickets = _close_tickets(s, client.id, now)
    dedupe = f"offboarding:{step.idempotency_key}"
    if s.scalars(select(Notice.id).where(Notice.dedupe_key == dedupe)).first() is None:
        who = f"{contact.get('name')} <{contact.get('email')}>" if contact.get("email") else "the client"
        lines = [f"- #{t.id} {t.title} ({'handed over to ' + who if handed else 'closed'})" for t in tickets]
        body = (
            f"{client.name}'s services end on {run.end_of_service.isoformat()}: systems management, backup "
            "monitoring and proactive maintenance are deactivated for this client, and its alerts are now "
            "`orphaned` (a deactivation issue, not work).\n\n"
            + (f"Open tickets {'handed over' if handed else 'closed'} at closeout:\n" + "\n".join(lines)
               if lines else "No ticket was open at closeout.")
            + f"\n\nDo not open new work for {client.name}; send any request to the owner of offboarding "
            f"run #{run.id}.\n\nNote: {step.note or ''}\n"
        )
        to = staff_addresses()
        s.add(Notice(
            client_id=client.id, kind="service_desk", dedupe_key=dedupe, to=to, cc=[],
            subject=f"{client.name}: services deactivated on {run.end_of_service.isoformat()}"[:300],
            body_text=body,
            data={"run": run.id, "step": step.key, "audience": ["staff"], "tickets": [t.id for t in tickets],
                  "handed_over_to": contact or None},
            state="waiting", created_at=now,  # the outbox keeps it on record when there is no staff address
        ))
    return f"{len(tickets)} open ticket(s) {'handed over' if handed else 'closed'}; the service desk is told"


def open_tickets(s: Session, client_id: int) -> int:
    return int(
        s.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.client_id == client_id, Ticket.status.in_(OPEN_TICKETS))
        )
        or 0
    )

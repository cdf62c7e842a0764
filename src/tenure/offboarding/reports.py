"""Offboarding reports (DOMAIN.md "Offboarding", phases 1, 6 and 7, and "Measures").

- `asset_report`: the final IT asset report of a client's run: the inventory snapshot the run took
  (`p1.snapshot`'s result) or, before it was taken, the current data: devices (role, OS, features, checks,
  RMM id), vendor accounts with their counts, backup jobs, licenses (what `p1.licenses` records).
- `health_report`: the final system health report: the client's devices with their alerts over the last
  30 days (open and resolved), backup jobs with their last result and status, and the open tickets.
- `render_html` / `render_pdf`: either report from one Jinja2 template, PDF through WeasyPrint.
- `record_lessons`: the reason codes and what to change (`tenure offboard lessons`), on the client's run.
- `offboarding_report`: per former client (a run in state done) its end of service, reason codes and the
  deactivation issues found after closeout; and the client return rate over N months.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from dateutil.relativedelta import relativedelta
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import Agreement
from tenure.billing.models import Invoice, InvoiceLine
from tenure.clients.models import BackupJob, Client, Device, VendorAccount
from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError, ValidationFailed
from tenure.intake.models import Alert
from tenure.offboarding.actions import OPEN_TICKETS
from tenure.offboarding.models import OffboardingRun, OffboardingStep
from tenure.triage.models import Ticket
from tenure.vocabulary import FEE_KINDS

REASON_CODES = ("price", "service_quality", "moved_in_house", "acquired", "closed_business", "msp_ended", "other")
HEALTH_DAYS = 30
FINAL_CREDIT_KINDS = ("credit", "refund")  # the final invoice's settlement: not a charge after the end
# the steps that end our part in a vendor account: removed from the RMM, closed, the hosted service moved to
# the new provider, the security vendor told de-provisioning is complete (or, with nothing to remove, told once)
CLOSING_STEPS = (
    "p3.rmm-remove.", "p3.account-close.", "p4.account-close.", "p5.transition.", "p3.siem-complete.",
    "p3.siem-confirmed.",
)

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())


# ------------------------------------------------------------------------------------------ loading


def _client(s: Session, key: str) -> Client:
    client = s.scalars(select(Client).where(Client.key == key)).first()
    if client is None:
        raise NotFound(f"no client {key!r} (see `tenure client list`)")
    return client


def _run(s: Session, client: Client) -> OffboardingRun:
    """The client's latest run (the open one, or the last done)."""
    run = s.scalars(
        select(OffboardingRun).where(OffboardingRun.client_id == client.id).order_by(OffboardingRun.id.desc())
    ).first()
    if run is None:
        raise NotFound(f"{client.key} has no offboarding run (`tenure offboard apply {client.key} --answers FILE`)")
    return run


def _steps(s: Session, run_id: int) -> dict[str, OffboardingStep]:
    return {st.key: st for st in s.scalars(select(OffboardingStep).where(OffboardingStep.run_id == run_id))}


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _header(client: Client, run: OffboardingRun) -> dict[str, Any]:
    return {
        "client": client.key,
        "client_name": client.name,
        "run": run.id,
        "state": run.state,
        "end_of_service": run.end_of_service.isoformat(),
        "reason": run.reason,
    }


# ------------------------------------------------------------------------------------- asset report


def _counts(details: dict[str, Any]) -> dict[str, int]:
    """An account's counts: numbers as they are, lists by their length."""
    out: dict[str, int] = {}
    for name, value in sorted((details or {}).items()):
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            out[name] = value
        elif isinstance(value, list | tuple):
            out[name] = len(value)
    return out


def _current_inventory(s: Session, client: Client) -> dict[str, Any]:
    devices = [
        {
            "key": d.key,
            "hostname": d.hostname,
            "role": d.role,
            "os": d.os,
            "features": list(d.features or ()),
            "checks": list(d.checks or ()),
            "rmm_vendor": d.rmm_vendor,
            "rmm_id": d.rmm_id,
        }
        for d in s.scalars(select(Device).where(Device.client_id == client.id, Device.active).order_by(Device.key))
    ]
    accounts = [
        {"key": a.key, "kind": a.kind, "vendor": a.vendor, "external_id": a.external_id, "details": a.details or {}}
        for a in s.scalars(
            select(VendorAccount)
            .where(VendorAccount.client_id == client.id, VendorAccount.active)
            .order_by(VendorAccount.key)
        )
    ]
    jobs = [
        {"key": j.key, "product": j.product, "name": j.name, "status": j.status}
        for j in s.scalars(select(BackupJob).where(BackupJob.client_id == client.id).order_by(BackupJob.key))
    ]
    return {"devices": devices, "accounts": accounts, "backup_jobs": jobs, "vendors": {}}


def _licenses(step: OffboardingStep | None, accounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [
        {"account": a["key"], "vendor": a["vendor"], "licenses": a["details"]["licenses"]}
        for a in accounts
        if (a.get("details") or {}).get("licenses")
    ]
    if step is not None and step.state in ("done", "skipped") and step.note:
        out.append({"account": None, "vendor": None, "licenses": step.note, "state": step.state})
    return out


def asset_report(db: Database, client_key: str) -> dict[str, Any]:
    with db.reader() as s:
        client = _client(s, client_key)
        run = _run(s, client)
        steps = _steps(s, run.id)
        snap = steps.get("p1.snapshot")
        taken = snap is not None and snap.state == "done" and "devices" in (snap.result or {})
        data = dict(snap.result) if taken and snap is not None else _current_inventory(s, client)
        licenses = _licenses(steps.get("p1.licenses"), data.get("accounts") or [])
        header = _header(client, run)
    devices = sorted(data.get("devices") or [], key=lambda d: d["key"])
    agents = Counter(d.get("rmm_vendor") for d in devices if d.get("rmm_vendor"))
    accounts = []
    for a in sorted(data.get("accounts") or [], key=lambda a: a["key"]):
        counts = _counts(a.get("details") or {})
        if a["kind"] == "rmm":
            counts = {"devices": agents.get(a["vendor"], 0), **counts}
            listed = (data.get("vendors") or {}).get(a["key"]) or {}
            if isinstance(listed.get("agents"), list):
                counts["agents_listed"] = len(listed["agents"])
        accounts.append({"key": a["key"], "kind": a["kind"], "vendor": a["vendor"],
                         "external_id": a.get("external_id"), "counts": counts})  # fmt: skip
    return header | {
        "source": "snapshot" if taken else "current",
        "taken_at": data.get("taken_at") if taken else None,
        "devices": devices,
        "accounts": accounts,
        "backup_jobs": sorted(data.get("backup_jobs") or [], key=lambda j: j["key"]),
        "licenses": licenses,
        "totals": {
            "devices": len(devices),
            "servers": sum(1 for d in devices if d.get("role") == "server"),
            "accounts": len(accounts),
            "backup_jobs": len(data.get("backup_jobs") or []),
        },
    }


# ------------------------------------------------------------------------------------ health report


def health_report(db: Database, client_key: str, as_of: datetime | None = None) -> dict[str, Any]:
    with db.reader() as s:
        client = _client(s, client_key)
        run = _run(s, client)
        until = _aware(as_of) or _aware(run.completed_at) or clock.now()
        since = until - timedelta(days=HEALTH_DAYS)
        devices = list(s.scalars(select(Device).where(Device.client_id == client.id).order_by(Device.key)))
        per_device: dict[int | None, Counter[str]] = {}
        for device_id, status in s.execute(
            select(Alert.device_id, Alert.status).where(
                Alert.client_id == client.id, Alert.last_seen >= since, Alert.first_seen <= until
            )
        ):
            per_device.setdefault(device_id, Counter())["resolved" if status == "resolved" else "open"] += 1
        last_alert = dict(
            s.execute(
                select(Alert.device_id, Alert.title)
                .where(Alert.client_id == client.id, Alert.last_seen >= since, Alert.first_seen <= until)
                .order_by(Alert.last_seen)
            ).all()
        )  # the last one per device wins
        rows = [
            {
                "key": d.key,
                "hostname": d.hostname,
                "role": d.role,
                "os": d.os,
                "active": d.active,
                "last_seen": _iso(d.last_seen),
                "open_alerts": per_device.get(d.id, Counter())["open"],
                "resolved_alerts": per_device.get(d.id, Counter())["resolved"],
                "last_alert": last_alert.get(d.id),
            }
            for d in devices
        ]
        other = per_device.get(None, Counter())
        jobs = [
            {
                "key": j.key,
                "name": j.name,
                "product": j.product,
                "status": j.status,
                "last_status": j.last_status,
                "last_result_at": _iso(j.last_result_at),
            }
            for j in s.scalars(select(BackupJob).where(BackupJob.client_id == client.id).order_by(BackupJob.key))
        ]
        tickets = [
            {"id": t.id, "kind": t.kind, "status": t.status, "title": t.title, "opened_at": _iso(t.opened_at)}
            for t in s.scalars(
                select(Ticket)
                .where(Ticket.client_id == client.id, Ticket.status.in_(OPEN_TICKETS))
                .order_by(Ticket.opened_at, Ticket.id)
            )
        ]
        header = _header(client, run)
    return header | {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "days": HEALTH_DAYS,
        "devices": rows,
        "client_alerts": {"open": other["open"], "resolved": other["resolved"]},
        "backup_jobs": jobs,
        "open_tickets": tickets,
    }


# -------------------------------------------------------------------------------------------- render

TEMPLATES = {"asset": "asset_report.html", "health": "health_report.html"}


def render_html(kind: str, report: dict[str, Any]) -> str:
    if kind not in TEMPLATES:
        raise TenureError(f"no {kind!r} report: {', '.join(TEMPLATES)}")
    return _env.get_template(TEMPLATES[kind]).render(report=report, generated=clock.now())


def render_pdf(kind: str, report: dict[str, Any]) -> bytes:
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: the system's Pango is missing
        raise TenureError(f"PDF needs WeasyPrint and Pango ({exc}); HTML works without them: use --html") from None
    pdf: bytes = HTML(string=render_html(kind, report)).write_pdf()
    return pdf


# ------------------------------------------------------------------------------------------- lessons


def _codes_in(text: str | None) -> list[str]:
    words = set(re.findall(r"[a-z_]+", (text or "").lower()))
    return [code for code in REASON_CODES if code in words]


def lessons_of(run: OffboardingRun, step: OffboardingStep | None) -> dict[str, Any]:
    """The run's lessons: recorded ones (`tenure offboard lessons`), else codes named in p7.lessons' note."""
    lessons = dict(run.lessons or {})
    codes = [c for c in lessons.get("reason_codes") or [] if isinstance(c, str)]
    change = lessons.get("change")
    if not codes and step is not None and step.state == "done":
        codes = _codes_in(step.note)
        change = change or step.note
    if not codes and run.reason == "msp_ended":
        codes = ["msp_ended"]
    return {"reason_codes": codes, "change": change}


def record_lessons(db: Database, client_key: str, reasons: Sequence[str], change: str | None) -> dict[str, Any]:
    problems = [f"--reason {r!r} is not one of {', '.join(REASON_CODES)}" for r in reasons if r not in REASON_CODES]
    if not reasons:
        problems.append(f"give at least one --reason ({', '.join(REASON_CODES)})")
    if not change or not change.strip():
        problems.append("--change TEXT is required: what we change in delivery")
    if problems:
        raise ValidationFailed(problems)
    with db.unit_of_work() as s:
        client = _client(s, client_key)
        run = _run(s, client)
        run.lessons = {
            **(run.lessons or {}),
            "reason_codes": list(dict.fromkeys(reasons)),
            "change": (change or "").strip(),
            "recorded_at": clock.now().isoformat(),
        }
        recorded = {"client": client.key, "run": run.id, **run.lessons}
        lessons_step = s.scalars(
            select(OffboardingStep).where(OffboardingStep.run_id == run.id, OffboardingStep.key == "p7.lessons")
        ).first()
        finished = lessons_step is None or lessons_step.state in ("done", "skipped")
    return recorded | {"step": _complete_lessons(db, client_key, recorded, finished)}


def _complete_lessons(db: Database, client_key: str, recorded: dict[str, Any], finished: bool) -> str:
    """Recording the lessons is what the lessons-learned step asks for: it is ticked done with them (when it
    is ready: until then it says what it waits for, and `tenure offboard done` finishes it later)."""
    from tenure.offboarding import service

    if finished:
        return "p7.lessons already finished"
    note = f"reason codes: {', '.join(recorded['reason_codes'])}; change: {recorded['change']}"
    try:
        _, message = service.answer(db, "done", client_key, "p7.lessons", note)
    except TenureError as exc:
        return f"lessons recorded; the step is not done yet: {exc}"
    return message


# ------------------------------------------------------------------------------- the owner's measures


def _closed_by_run(steps: dict[str, OffboardingStep], account: str) -> bool:
    """Whether the run ended our part in this vendor account (a closing step of it done)."""
    def done(key: str) -> bool:
        return steps.get(key) is not None and steps[key].state == "done"

    if any(done(prefix + account) for prefix in CLOSING_STEPS):
        return True
    # a security account with nothing to remove: the one notice told the vendor de-provisioning is complete
    notice = f"p3.siem-notice.{account}"
    more = (f"p3.siem-complete.{account}", f"p3.siem-remove.{account}.")
    return done(notice) and not any(k.startswith(more) for k in steps)


def _issues(s: Session, client: Client, run: OffboardingRun, steps: dict[str, OffboardingStep]) -> dict[str, Any]:
    end = run.end_of_service
    after = _end_of_day(end)
    alerts = [
        {"id": a.id, "title": a.title, "decision": a.decision, "first_seen": _iso(a.first_seen)}
        for a in s.scalars(
            select(Alert)
            .where(Alert.client_id == client.id, or_(Alert.decision == "orphaned", Alert.first_seen >= after))
            .order_by(Alert.first_seen, Alert.id)
        )
    ]
    charges = [
        {
            "invoice": number,
            "invoice_kind": invoice_kind,
            "kind": line.kind,
            "description": line.description,
            "amount": str(line.amount),
            "service_from": line.service_from.isoformat() if line.service_from else None,
            "service_to": line.service_to.isoformat() if line.service_to else None,
        }
        for line, number, invoice_kind in s.execute(
            select(InvoiceLine, Invoice.number, Invoice.kind)
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(
                Invoice.client_id == client.id,
                Invoice.status != "void",
                or_(InvoiceLine.service_to > end, InvoiceLine.service_from > end),
            )
            .order_by(Invoice.date, InvoiceLine.invoice_id, InvoiceLine.position)
        )
        if not (invoice_kind == "final" and line.kind in FINAL_CREDIT_KINDS)
    ]
    tickets = [
        {"id": t.id, "kind": t.kind, "status": t.status, "title": t.title, "opened_at": _iso(t.opened_at)}
        for t in s.scalars(
            select(Ticket)
            .where(Ticket.client_id == client.id, Ticket.opened_at >= after, Ticket.kind != "offboarding")
            .order_by(Ticket.opened_at, Ticket.id)
        )
    ]
    accounts = [
        {"key": a.key, "kind": a.kind, "vendor": a.vendor}
        for a in s.scalars(
            select(VendorAccount)
            .where(VendorAccount.client_id == client.id, VendorAccount.active)
            .order_by(VendorAccount.key)
        )
        # an account the run closed (a close step done) is not still active, whatever the flag says
        if not _closed_by_run(steps, a.key)
    ]  # fmt: skip
    return {
        "orphaned_alerts": alerts,
        "charges_after_end": charges,
        "tickets_after_end": tickets,
        "vendor_accounts_active": accounts,
    }


def offboarding_report(db: Database, months: int = 12) -> dict[str, Any]:
    """Per former client: end of service, reason codes, deactivation issues; and the client return rate."""
    if months < 1:
        raise ValidationFailed(["--months must be at least 1"])
    today = clock.today()
    with db.reader() as s:
        runs = list(
            s.scalars(select(OffboardingRun).where(OffboardingRun.state == "done").order_by(OffboardingRun.id.desc()))
        )
        latest: dict[int, OffboardingRun] = {}
        for run in runs:
            latest.setdefault(run.client_id, run)
        clients = {c.id: c for c in s.scalars(select(Client).where(Client.id.in_(list(latest))))}
        rows: list[dict[str, Any]] = []
        for client_id, run in latest.items():
            client = clients[client_id]
            steps = _steps(s, run.id)
            issues = _issues(s, client, run, steps)
            window_end = run.end_of_service + relativedelta(months=months)
            returned = s.scalars(
                select(Agreement)
                .where(
                    Agreement.client_id == client.id,
                    Agreement.kind.in_(FEE_KINDS),
                    Agreement.start > run.end_of_service,
                    Agreement.start <= window_end,
                )
                .order_by(Agreement.start, Agreement.key)
            ).first()
            rows.append(
                {
                    "client": client.key,
                    "client_name": client.name,
                    "run": run.id,
                    "end_of_service": run.end_of_service.isoformat(),
                    "completed_at": _iso(run.completed_at),
                    "reason": run.reason,
                    "lessons": lessons_of(run, steps.get("p7.lessons")),
                    "issues": issues,
                    "issue_count": sum(len(v) for v in issues.values()),
                    "returned": (
                        {"agreement": returned.key, "kind": returned.kind, "start": returned.start.isoformat()}
                        if returned is not None
                        else None
                    ),
                    "window_open": window_end > today,
                }
            )
    rows.sort(key=lambda r: (r["end_of_service"], r["client"]))
    returned_n = sum(1 for r in rows if r["returned"])
    return {
        "months": months,
        "as_of": today.isoformat(),
        "former_clients": rows,
        "totals": {
            key: sum(len(r["issues"][key]) for r in rows)
            for key in ("orphaned_alerts", "charges_after_end", "tickets_after_end", "vendor_accounts_active")
        },
        "return_rate": {
            "former": len(rows),
            "returned": returned_n,
            "percent": round(100.0 * returned_n / len(rows), 1) if rows else None,
        },
    }

"""Read models for the pages and the REST API: paginated, on indexes, a fixed number of queries per page.

- Lists are pages (`limit`, `offset`) with a total (db/paging.py). Counting a million alerts costs a scan, so
  a total is exact up to `COUNT_CAP` and otherwise says `total_exact: false` (`count="exact"` asks for the
  real one).
- Alerts and time entries of one client come newest first on their (client, date) indexes; unfiltered lists
  come newest first by id (the order rows were recorded), which is the primary key.
- Every client's class (the dashboard, the client list filtered by class) is computed by
  `clients.service.client_views` and kept per process until the change log or the ledger moves, the day
  changes, or `CLASS_TTL` passes, so a page does not recompute 5,000 classes per view.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from itertools import chain, repeat
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from tenure.agreements.models import Agreement, Block, LedgerEntry, TimeEntry
from tenure.billing.models import Invoice, InvoiceLine
from tenure.billing.service import invoice_json
from tenure.clients.models import BackupJob, Client, Device, Site
from tenure.clients.service import ClientView, _agreement_json, client_views
from tenure.db.changelog import ObjectChange
from tenure.db.engine import Database
from tenure.db.paging import Page, count
from tenure.errors import NotFound
from tenure.intake.models import Alert
from tenure.money import ZERO, fmt
from tenure.msp.models import MspSettings
from tenure.offboarding import flow
from tenure.offboarding.models import OffboardingRun, OffboardingStep, StepAttempt
from tenure.offboarding.service import PHASES, step_json
from tenure.triage import rules as triage_rules
from tenure.triage.report import unpaid_report
from tenure.triage.service import alert_json

CLASS_TTL = 300.0


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value else None


def _moment(day: date) -> datetime:
    return datetime.combine(day, dtime(0), tzinfo=UTC)


# ------------------------------------------------------------------------------------ client classes


_class_lock = threading.Lock()
_class_cache: dict[tuple[str, date], tuple[tuple[Any, ...], float, list[ClientView]]] = {}


def _version(s: Session) -> tuple[Any, ...]:
    return (s.scalar(select(func.max(ObjectChange.id))), s.scalar(select(func.max(LedgerEntry.id))))


def all_views(db: Database, day: date) -> list[ClientView]:
    """Every client with its class and balances on `day` (no devices), cached while nothing changed."""
    key = (db.url, day)
    with db.reader() as s:
        version = _version(s)
        with _class_lock:
            hit = _class_cache.get(key)
        if hit is not None and hit[0] == version and time.monotonic() - hit[1] < CLASS_TTL:
            return hit[2]
        views = client_views(s, day, with_devices=False)
    with _class_lock:
        for old in [k for k in _class_cache if k[0] == db.url and k != key]:
            del _class_cache[old]
        _class_cache[key] = (version, time.monotonic(), views)
    return views


_report_cache: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, Any]]] = {}


def unpaid_report_cached(db: Database, period: str) -> dict[str, Any]:
    """The unpaid-work report for the page: computed again only when something it reads has changed (the
    change log, the ledger, or a new alert), since at scale it replays every offer for every client."""
    with db.reader() as s:
        version = (*_version(s), s.scalar(select(func.max(Alert.id))))
    key = (db.url, period)
    with _class_lock:
        hit = _report_cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    report = unpaid_report(db, period)
    with _class_lock:
        _report_cache[key] = (version, report)
    return report


def forget_classes() -> None:
    with _class_lock:
        _class_cache.clear()
        _report_cache.clear()


# --------------------------------------------------------------------------------------------- clients


def client_summary(view: ClientView, devices: int) -> dict[str, Any]:
    out = view.as_json()
    out.pop("devices")
    return out | {"device_count": devices}


def _device_counts(s: Session, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    return dict(
        s.execute(
            select(Device.client_id, func.count())
            .where(Device.client_id.in_(ids), Device.active)
            .group_by(Device.client_id)
        ).all()
    )


def clients_page(
    db: Database,
    day: date,
    klass: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
    archived: bool = False,
) -> Page:
    """Clients by key with class and balances; `q` matches key or name, `klass` the class on `day`. Archived
    clients are out of the list (as out of `all_views`), or the list is only them (`archived`)."""
    needle = (q or "").strip().lower()
    if klass and not archived:
        views = [
            v
            for v in all_views(db, day)
            if v.klass == klass and (not needle or needle in v.key.lower() or needle in v.name.lower())
        ]
        chosen = views[offset : offset + limit]
        with db.reader() as s:
            devices = _device_counts(s, [v.id for v in chosen])
        items = [client_summary(v, devices.get(v.id, 0)) for v in chosen]
        return Page(items, len(views), True, limit, offset)
    with db.reader() as s:
        query = select(Client.key).where(Client.archived_at.is_not(None) if archived else Client.archived_at.is_(None))
        if needle:
            pattern = f"%{needle}%"
            query = query.where(func.lower(Client.key).like(pattern) | func.lower(Client.name).like(pattern))
        total, exact = count(s, query, exact=True)
        keys = list(s.scalars(query.order_by(Client.key).limit(limit).offset(offset)))
        page_views = client_views(s, day, keys=keys, with_devices=False) if keys else []
        devices = _device_counts(s, [v.id for v in page_views])
    items = [client_summary(v, devices.get(v.id, 0)) for v in page_views]
    return Page(items, total, exact, limit, offset)


def client_view(db: Database, key: str, day: date) -> tuple[ClientView, int]:
    with db.reader() as s:
        views = client_views(s, day, keys=[key], with_devices=False)
        if not views:
            raise NotFound(f"no client {key!r}")
        return views[0], _device_counts(s, [views[0].id]).get(views[0].id, 0)


def client_id(s: Session, key: str) -> int:
    cid = s.scalar(select(Client.id).where(Client.key == key))
    if cid is None:
        raise NotFound(f"no client {key!r}")
    return cid


def devices_page(db: Database, key: str, limit: int = 50, offset: int = 0) -> Page:
    with db.reader() as s:
        cid = client_id(s, key)
        query = select(Device.key, Device.hostname, Device.role, Device.os, Device.active, Device.last_seen).where(
            Device.client_id == cid
        )
        total, exact = count(s, query, exact=True)
        rows = s.execute(query.order_by(Device.key).limit(limit).offset(offset)).all()
    items = [
        {"key": k, "hostname": h, "role": r, "os": o, "active": a, "last_seen": _iso(seen)}
        for k, h, r, o, a, seen in rows
    ]
    return Page(items, total, exact, limit, offset)


def ledger_page(db: Database, key: str, day: date, limit: int = 50, offset: int = 0) -> Page:
    """The prepaid ledger newest first, each entry with the running balance of its account after it."""
    with db.reader() as s:
        cid = client_id(s, key)
        blocks = dict(s.execute(select(Block.id, Block.key).where(Block.client_id == cid)).all())
        rows = s.execute(
            select(
                LedgerEntry.id,
                LedgerEntry.date,
                LedgerEntry.account,
                LedgerEntry.kind,
                LedgerEntry.block_id,
                LedgerEntry.minutes,
                LedgerEntry.amount,
                LedgerEntry.cause_type,
                LedgerEntry.cause_id,
                LedgerEntry.note,
            )
            .where(LedgerEntry.client_id == cid, LedgerEntry.date <= day)
            .order_by(LedgerEntry.date, LedgerEntry.id)
        ).all()
    minutes, money = 0, ZERO
    entries = []
    for r in rows:
        item: dict[str, Any] = {
            "date": r.date.isoformat(),
            "account": r.account,
            "kind": r.kind,
            "block": blocks.get(r.block_id) if r.block_id else None,
            "cause": f"{r.cause_type}:{r.cause_id}" if r.cause_type else None,
            "note": r.note,
        }
        if r.account == "block":
            minutes += r.minutes
            item |= {"minutes": r.minutes, "balance_minutes": minutes}
        else:
            money += r.amount
            item |= {"amount": fmt(r.amount), "balance": fmt(money)}
        entries.append(item)
    entries.reverse()
    from tenure.agreements.explain import explain  # each entry's cause, in words and linked

    return Page(explain(db, key, entries[offset : offset + limit]), len(entries), True, limit, offset)


# ------------------------------------------------------------------------------------ a client's forms


def billed_agreements(db: Database, key: str) -> set[str]:
    """The keys of the client's agreements that were billed (an invoice that stands has a line from it, or
    another system billed it up to a day): their money terms change only from a date (book/objects.py)."""
    with db.reader() as s:
        cid = client_id(s, key)
        elsewhere = select(Agreement.key).where(Agreement.client_id == cid, Agreement.billed_through.is_not(None))
        invoiced = (
            select(Agreement.key)
            .join(InvoiceLine, InvoiceLine.agreement_id == Agreement.id)
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(Agreement.client_id == cid, Invoice.status != "void")
            .distinct()
        )
        return set(s.scalars(elsewhere)) | set(s.scalars(invoiced))


def choices(db: Database, key: str, what: str, limit: int = 2000) -> list[str]:
    """The keys a form's select offers: the client's `sites` or (active) `devices`."""
    with db.reader() as s:
        cid = client_id(s, key)
        if what == "sites":
            query = select(Site.key).where(Site.client_id == cid).order_by(Site.key)
        else:
            query = select(Device.key).where(Device.client_id == cid, Device.active).order_by(Device.key)
        return list(s.scalars(query.limit(limit)))


def backup_jobs(db: Database, key: str, limit: int = 500) -> list[dict[str, Any]]:
    """The client's backup jobs, waiting ones (pending) first, with their last result: one query."""
    with db.reader() as s:
        cid = client_id(s, key)
        rows = s.execute(
            select(BackupJob, Device.key)
            .outerjoin(Device, Device.id == BackupJob.device_id)
            .where(BackupJob.client_id == cid)
            .order_by((BackupJob.status != "pending"), (BackupJob.status == "retired"), BackupJob.key)
            .limit(limit)
        ).all()
    return [
        {
            "key": j.key,
            "name": j.name,
            "product": j.product,
            "device": device,
            "schedule": j.schedule,
            "status": j.status,
            "last_status": j.last_status,
            "last_result_at": _iso(j.last_result_at),
            "next_expected_at": _iso(j.next_expected_at),
        }
        for j, device in rows
    ]


def pending_jobs(db: Database, key: str) -> int:
    with db.reader() as s:
        cid = client_id(s, key)
        query = select(func.count()).select_from(BackupJob).where(BackupJob.client_id == cid)
        return int(s.scalar(query.where(BackupJob.status == "pending")) or 0)


def has_history(db: Database, key: str) -> bool:
    """Whether the client has anything a bookkeeper would need again (then it is archived, never purged)."""
    from tenure.book.objects import has_history as held

    with db.reader() as s:
        return held(s, client_id(s, key))


# ------------------------------------------------------------------------------------ agreements, blocks


def agreements_page(
    db: Database,
    client: str | None = None,
    kind: str | None = None,
    active_on: date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    with db.reader() as s:
        query = select(Agreement, Client.key).join(Client, Client.id == Agreement.client_id)
        if client:
            query = query.where(Agreement.client_id == client_id(s, client))
        if kind:
            query = query.where(Agreement.kind == kind)
        if active_on:
            query = query.where(Agreement.start <= active_on, (Agreement.end.is_(None)) | (Agreement.end >= active_on))
        total, exact = count(s, query, exact=True)
        rows = s.execute(query.order_by(Agreement.key).limit(limit).offset(offset)).all()
    items = [{"client": key} | _agreement_json(a) for a, key in rows]
    return Page(items, total, exact, limit, offset)


def blocks_page(db: Database, day: date, client: str | None = None, limit: int = 50, offset: int = 0) -> Page:
    """Prepaid blocks with the minutes left on each (its ledger entries up to `day`)."""
    with db.reader() as s:
        query = select(Block, Client.key).join(Client, Client.id == Block.client_id)
        if client:
            query = query.where(Block.client_id == client_id(s, client))
        total, exact = count(s, query, exact=True)
        rows = s.execute(query.order_by(Block.purchased.desc(), Block.key).limit(limit).offset(offset)).all()
        ids = [b.id for b, _ in rows]
        left = (
            dict(
                s.execute(
                    select(LedgerEntry.block_id, func.sum(LedgerEntry.minutes))
                    .where(LedgerEntry.block_id.in_(ids), LedgerEntry.date <= day)
                    .group_by(LedgerEntry.block_id)
                ).all()
            )
            if ids
            else {}
        )
    items = [
        {
            "key": b.key,
            "client": key,
            "purchased": b.purchased.isoformat(),
            "hours": str(Decimal(b.minutes) / 60),
            "bonus_hours": str(Decimal(b.bonus_minutes) / 60),
            "price": fmt(b.price),
            "expires": _iso(b.expires),
            "expired": b.expires is not None and b.expires < day,
            "balance_minutes": int(left.get(b.id) or 0),
        }
        for b, key in rows
    ]
    return Page(items, total, exact, limit, offset)


# ------------------------------------------------------------------------------------------------ time


def time_json(t: TimeEntry, key: str) -> dict[str, Any]:
    """A time entry in a list: a voided one is listed too, marked (`voided`, when, why), and counts for nothing."""
    return {
        "id": t.id,
        "client": key,
        "key": t.key,
        "date": t.date.isoformat(),
        "minutes": t.minutes,
        "work_type": t.work_type,
        "technician": t.technician,
        "note": t.note,
        "ticket": t.ticket_id,
        "on_hold": t.on_hold,
        "voided": t.voided_at is not None,
        "voided_at": _iso(t.voided_at),
        "void_reason": t.void_reason,
    }


def time_page(
    db: Database,
    client: str | None = None,
    start: date | None = None,
    end: date | None = None,
    work_type: str | None = None,
    limit: int = 50,
    offset: int = 0,
    exact: bool = False,
) -> Page:
    """Time entries newest first: by date for one client, by id (recorded) otherwise. Voided entries are listed,
    marked `voided` (never dropped silently); `total` counts rows, not minutes: `time_totals` counts work."""
    with db.reader() as s:
        query = select(TimeEntry, Client.key).join(Client, Client.id == TimeEntry.client_id)
        if client:
            query = query.where(TimeEntry.client_id == client_id(s, client))
        if start:
            query = query.where(TimeEntry.date >= start)
        if end:
            query = query.where(TimeEntry.date <= end)
        if work_type:
            query = query.where(TimeEntry.work_type == work_type)
        order = (TimeEntry.date.desc(), TimeEntry.id.desc()) if client else (TimeEntry.id.desc(),)
        total, is_exact = count(s, query, exact)
        rows = s.execute(query.order_by(*order).limit(limit).offset(offset)).all()
    return Page([time_json(t, key) for t, key in rows], total, is_exact, limit, offset)


def time_totals(db: Database, client: str) -> dict[str, int]:
    """A client's time: live entries and their minutes (voided entries count for nothing), and how many were
    voided."""
    live = TimeEntry.voided_at.is_(None)
    with db.reader() as s:
        query = select(
            func.count(),
            func.coalesce(func.sum(case((live, 1), else_=0)), 0),
            func.coalesce(func.sum(case((live, TimeEntry.minutes), else_=0)), 0),
        ).where(TimeEntry.client_id == client_id(s, client))
        rows, entries, minutes = s.execute(query).one()
    return {"entries": int(entries), "minutes": int(minutes), "voided": int(rows) - int(entries)}


# ------------------------------------------------------------------------------------------- invoices


def invoices_page(
    db: Database,
    client: str | None = None,
    period: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    """Invoices newest first, with their lines (one more query for the page's lines)."""
    from tenure.billing.service import period_start

    with db.reader() as s:
        query = select(Invoice, Client.key).join(Client, Client.id == Invoice.client_id)
        if client:
            query = query.where(Invoice.client_id == client_id(s, client))
        if period:
            start = period_start(period)
            query = query.where(Invoice.date >= start, Invoice.date < start + relativedelta(months=1))
        if status:
            query = query.where(Invoice.status == status)
        if kind:
            query = query.where(Invoice.kind == kind)
        total, exact = count(s, query, exact=True)
        rows = s.execute(
            query.options(selectinload(Invoice.lines))
            .order_by(Invoice.date.desc(), Invoice.number.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        items = [invoice_json(invoice, key) for invoice, key in rows]
    return Page(items, total, exact, limit, offset)


def invoice_totals_by_month(db: Database, months: int, today: date) -> list[tuple[str, Decimal]]:
    """Non-void invoice totals per month for the last `months` months (the dashboard's chart)."""
    first = today.replace(day=1) - relativedelta(months=months - 1)
    with db.reader() as s:
        rows = s.execute(
            select(Invoice.date, Invoice.total).where(Invoice.date >= first, Invoice.status != "void")
        ).all()
    sums: dict[str, Decimal] = {(first + relativedelta(months=i)).strftime("%Y-%m"): ZERO for i in range(months)}
    for day, total in rows:
        label = day.strftime("%Y-%m")
        if label in sums:
            sums[label] += total
    return list(sums.items())


# --------------------------------------------------------------------------------------- alerts, tickets


def alerts_page(
    db: Database,
    client: str | None = None,
    decision: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    exact: bool = False,
) -> Page:
    """Alerts newest first: by first seen for one client or one decision (their indexes), else by id."""
    with db.reader() as s:
        query = (
            select(Alert, Client.key, Device.hostname)
            .outerjoin(Client, Client.id == Alert.client_id)
            .outerjoin(Device, Device.id == Alert.device_id)
        )
        if client:
            query = query.where(Alert.client_id == client_id(s, client))
        if decision:
            query = query.where(Alert.decision == decision)
        if status:
            query = query.where(Alert.status == status)
        if client or decision:
            order = (Alert.first_seen.desc(), Alert.id.desc())
        else:
            order = (Alert.id.desc(),)
        total, is_exact = count(s, query.with_only_columns(Alert.id), exact)
        rows = s.execute(query.order_by(*order).limit(limit).offset(offset)).all()
    return Page([alert_json(a, key, host) for a, key, host in rows], total, is_exact, limit, offset)


def tickets_page(
    db: Database,
    client: str | None = None,
    status: str | None = None,
    queue: bool = False,
    limit: int = 50,
    offset: int = 0,
    **filters: Any,
) -> Page:
    """Tickets newest first (desk.service.tickets_page); `queue` keeps the ones waiting on someone."""
    from tenure.desk.service import tickets_page as desk_page

    page: Page = desk_page(db, client, status, queue, limit, offset, **filters)
    return page


# ---------------------------------------------------------------------------------------- offboarding


def run_summary(run: OffboardingRun, key: str, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "run": run.id,
        "client": key,
        "state": run.state,
        "end_of_service": run.end_of_service.isoformat(),
        "reason": run.reason,
        "created_at": run.created_at.isoformat(),
        "completed_at": _iso(run.completed_at),
        "steps": sum(counts.values()),
        "counts": counts,
        "owner": run.owner,
    }


def runs_page(
    db: Database, client: str | None = None, state: str | None = None, limit: int = 50, offset: int = 0
) -> Page:
    with db.reader() as s:
        query = select(OffboardingRun, Client.key).join(Client, Client.id == OffboardingRun.client_id)
        if client:
            query = query.where(OffboardingRun.client_id == client_id(s, client))
        if state:
            query = query.where(OffboardingRun.state == state)
        total, exact = count(s, query, exact=True)
        rows = s.execute(query.order_by(OffboardingRun.id.desc()).limit(limit).offset(offset)).all()
        ids = [r.id for r, _ in rows]
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        if ids:
            for run_id, state_, n in s.execute(
                select(OffboardingStep.run_id, OffboardingStep.state, func.count())
                .where(OffboardingStep.run_id.in_(ids))
                .group_by(OffboardingStep.run_id, OffboardingStep.state)
            ):
                counts[run_id][state_] = n
    return Page([run_summary(r, key, counts[r.id]) for r, key in rows], total, exact, limit, offset)


def run_detail(db: Database, run_id: int, with_attempts: bool = True) -> dict[str, Any]:
    """One run: its steps (offboarding.service.step_json) by position, each with its attempts."""
    with db.reader() as s:
        found = s.execute(
            select(OffboardingRun, Client.key)
            .join(Client, Client.id == OffboardingRun.client_id)
            .where(OffboardingRun.id == run_id)
        ).first()
        if found is None:
            raise NotFound(f"no offboarding run #{run_id}")
        run, key = found
        steps = flow.steps_of(s, run.id)
        attempts: dict[int, list[dict[str, Any]]] = defaultdict(list)
        if with_attempts and steps:
            for a in s.scalars(
                select(StepAttempt).where(StepAttempt.step_id.in_([st.id for st in steps])).order_by(StepAttempt.id)
            ):
                attempts[a.step_id].append(
                    {
                        "worker": a.worker,
                        "started_at": _iso(a.started_at),
                        "finished_at": _iso(a.finished_at),
                        "outcome": a.outcome,
                        "error": a.error,
                        "calls": a.calls,
                    }
                )
        items = []
        for st in steps:
            item = step_json(st)
            if with_attempts:
                item["attempt_log"] = attempts.get(st.id, [])
            items.append(item)
        counts: dict[str, int] = defaultdict(int)
        for st in steps:
            counts[st.state] += 1
        summary = run_summary(run, key, dict(counts))
    return summary | {
        "answers": run.answers,
        "waiting_on": [st.key for st in steps if flow.on_person(st)],
        "phases": {str(n): name for n, name in PHASES.items()},
        "step_list": items,
    }


def run_client(db: Database, run_id: int) -> str:
    """The key of the client a run ends service for."""
    with db.reader() as s:
        key = s.scalar(
            select(Client.key)
            .join(OffboardingRun, OffboardingRun.client_id == Client.id)
            .where(OffboardingRun.id == run_id)
        )
    if key is None:
        raise NotFound(f"no offboarding run #{run_id}")
    return key


def _attempts(s: Session, step_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if step_ids:
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


def run_page(
    db: Database, run_id: int, phase: int | None = None, offset: int = 0, per_phase: int = 25
) -> dict[str, Any]:
    """What the run page shows, whatever the size of the run (a client with a thousand devices has thousands
    of steps): counts per phase and state in one grouped query, the first steps waiting on a person, and a
    page of steps per phase (or of the one phase asked for) with their attempts."""
    with db.reader() as s:
        found = s.execute(
            select(OffboardingRun, Client.key)
            .join(Client, Client.id == OffboardingRun.client_id)
            .where(OffboardingRun.id == run_id)
        ).first()
        if found is None:
            raise NotFound(f"no offboarding run #{run_id}")
        run, key = found
        by_phase: dict[int, dict[str, int]] = defaultdict(dict)
        attempted = 0
        for ph, state, n, tries in s.execute(
            select(OffboardingStep.phase, OffboardingStep.state, func.count(), func.sum(OffboardingStep.attempts))
            .where(OffboardingStep.run_id == run_id)
            .group_by(OffboardingStep.phase, OffboardingStep.state)
        ):
            by_phase[ph][state] = int(n)
            attempted += int(tries or 0)
        on_person = (
            OffboardingStep.run_id == run_id,
            OffboardingStep.state == "waiting",
            OffboardingStep.not_before.is_(None),
        )
        waiting_count = int(s.scalar(select(func.count()).select_from(OffboardingStep).where(*on_person)) or 0)
        waiting = list(
            s.scalars(select(OffboardingStep.key).where(*on_person).order_by(OffboardingStep.position).limit(10))
        )
        phases = sorted(by_phase) if phase is None else [phase]
        limit = per_phase if phase is None else 100
        steps: dict[int, list[OffboardingStep]] = {}
        for ph in phases:
            steps[ph] = list(
                s.scalars(
                    select(OffboardingStep)
                    .where(OffboardingStep.run_id == run_id, OffboardingStep.phase == ph)
                    .order_by(OffboardingStep.position)
                    .limit(limit)
                    .offset(offset if phase is not None else 0)
                )
            )
        attempts = _attempts(s, [st.id for group in steps.values() for st in group])
    counts: dict[str, int] = defaultdict(int)
    for states in by_phase.values():
        for state, n in states.items():
            counts[state] += n
    # the run's state as flow.state_of decided it (flow.advance keeps the column): the same in the list
    summary = run_summary(run, key, dict(counts)) | {"answers": run.answers}
    shown = {}
    for ph, group in steps.items():
        items = []
        for st in group:
            item = step_json(st)
            item["attempt_log"] = attempts.get(st.id, [])
            items.append(item)
        n = sum(by_phase.get(ph, {}).values())
        shown[ph] = {
            "name": PHASES.get(ph, f"Phase {ph}"),
            "steps": items,
            "total": n,
            "done": by_phase.get(ph, {}).get("done", 0) + by_phase.get(ph, {}).get("skipped", 0),
            "page": Page(items, n, True, limit, offset if phase is not None else 0),
        }
    return summary | {"waiting_on": waiting, "waiting_count": waiting_count, "phases": shown, "phase": phase}


# ------------------------------------------------------------------------------------------ dashboard


def msp(db: Database) -> MspSettings | None:
    with db.reader() as s:
        return s.scalars(select(MspSettings).limit(1)).first()


def low_balances(db: Database, day: date, views: list[ClientView], limit: int = 20) -> list[dict[str, Any]]:
    """Clients whose blocks are at or below their low-balance threshold, and retainers at zero."""
    with db.reader() as s:
        settings = s.scalars(select(MspSettings).limit(1)).first()
        default = settings.low_balance_minutes if settings else 180
        custom = select(Client.id, Client.low_balance_minutes).where(Client.low_balance_minutes.is_not(None))
        own = dict(s.execute(custom).all())
        holders = set(s.scalars(select(Block.client_id).where(Block.purchased <= day).distinct()))
    low = []
    for v in views:
        if v.klass == "former":
            continue
        threshold = own.get(v.id) or default
        retainer = any(
            a["kind"] == "retainer" and (a["end"] is None or a["end"] >= day.isoformat()) for a in v.agreements
        )
        if v.id in holders and v.block_balance_minutes <= threshold:
            low.append({"client": v.key, "name": v.name, "account": "block", "minutes": v.block_balance_minutes})
        elif retainer and v.retainer_balance <= 0:
            low.append({"client": v.key, "name": v.name, "account": "retainer", "amount": fmt(v.retainer_balance)})
    low.sort(key=lambda r: (r.get("minutes", 0), r["client"]))
    return low[:limit]


def decisions_in_month(db: Database, day: date) -> dict[str, int]:
    """Alerts first seen this month by decision (on the (decision, first_seen) index)."""
    start = day.replace(day=1)
    end = start + relativedelta(months=1)
    with db.reader() as s:
        rows = s.execute(
            select(Alert.decision, func.count())
            .where(
                Alert.decision.in_(triage_rules_decisions()),
                Alert.first_seen >= _moment(start),
                Alert.first_seen < _moment(end),
            )
            .group_by(Alert.decision)
        ).all()
    found = {d: 0 for d in triage_rules_decisions()}
    found.update({d: int(n) for d, n in rows})
    return found


def triage_rules_decisions() -> tuple[str, ...]:
    from tenure.triage.service import DECISIONS

    return DECISIONS


def unpaid_this_month(db: Database, day: date) -> dict[str, Any]:
    """Seed 004's arithmetic on this month's alerts (the full report adds the time written off)."""
    decisions = decisions_in_month(db, day)
    settings = msp(db)
    model = (settings.unpaid_work_minutes if settings else None) or dict(triage_rules.DEFAULT_UNPAID_MODEL)
    work = triage_rules.unpaid_minutes(chain.from_iterable(repeat(d, n) for d, n in decisions.items()), model)
    return {
        "period": day.strftime("%Y-%m"),
        "decisions": decisions,
        "suppressed": work.suppressed,
        "minutes_avoided": work.minutes_avoided,
        "reached_a_person": work.reached,
        "unpaid_minutes": work.minutes,
    }


def open_runs(db: Database, limit: int = 10) -> list[dict[str, Any]]:
    return runs_page(db, None, None, limit, 0).items


def class_counts(views: list[ClientView]) -> dict[str, int]:
    from tenure.vocabulary import CLIENT_CLASSES

    counts = dict.fromkeys(CLIENT_CLASSES, 0)
    for v in views:
        counts[v.klass] = counts.get(v.klass, 0) + 1
    return counts

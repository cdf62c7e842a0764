"""Proactive maintenance: plans, what is due, tickets for managed clients, the monthly call-before-service
notice and the client's answers to it.

- The **default plan** of each kind of `rules.DEFAULT_PLAN_KINDS` (`rules.DEFAULT_PLANS`: seed 001's list,
  the monthly patching for monitoring) is written the first time maintenance is used; a marker row in `meta`
  makes that happen once per kind, even with two processes starting together (`maintenance.default_plan`
  marks the first two kinds, `maintenance.default_plan.<kind>` each kind added since, so an installation
  made before a kind had a plan gets it once too). A default task the MSP does not want is switched off
  (`active = false`), not deleted (the marker keeps a deleted one from coming back anyway).
- A client's **own task** (client_id set) replaces the default task of the same key for that client.
- **What is due** (`run_due`, the worker job and `tenure maintenance due`): for each client of class
  `agreement` on a plan (`rules.plan_kind`), each task's latest occurrence at or before now. Managed (and
  monitoring) clients get one ticket per occurrence (`maintenance_occurrence` holds one row per client, task
  and occurrence, unique, so nothing is ticketed twice, even by two workers); the ticket is billable when the
  agreement does not cover the task's service. Call-before-service clients get, once a month, the monthly
  notice listing the month's uncovered items with their price at the agreement's hourly rate, each with
  approve and defer links; covered items (the monitoring and daily reports the fee pays for) are tickets.
- **Answers** (`answer`): an approved item becomes a billable ticket; a deferred item (and an item left
  unanswered) comes back on the next month's list, whose notice supersedes the earlier unanswered links.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import Agreement, TimeEntry
from tenure.bulk import chunks as _chunks
from tenure.clients.models import Client
from tenure.clients.service import client_views
from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError, ValidationFailed
from tenure.intake.schedule import zone_of
from tenure.maintenance import rules
from tenure.maintenance.models import CalendarFeed, MaintenanceDecision, MaintenanceOccurrence, MaintenanceTask
from tenure.msp.models import Meta, MspSettings
from tenure.notices import links
from tenure.notices.models import Notice
from tenure.notices.render import render_notice
from tenure.notices.service import addresses, msp_of
from tenure.triage.models import Ticket
from tenure.vocabulary import AGREEMENT_KINDS, SERVICES

PLAN_MARKER = "maintenance.default_plan"
CHUNK = 900
ANSWERS = ("approved", "deferred")


# ------------------------------------------------------------------------------------ default plan


FIRST_PLAN_KINDS = ("managed", "call_before_service")  # the kinds PLAN_MARKER marks


def _plan_marker(kind: str) -> str:
    return PLAN_MARKER if kind in FIRST_PLAN_KINDS else f"{PLAN_MARKER}.{kind}"


def ensure_default_plan(db: Database) -> int:
    """Write the default plan of each default kind on first use; returns the number of tasks written."""
    markers: dict[str, list[str]] = defaultdict(list)
    for kind in rules.DEFAULT_PLAN_KINDS:
        markers[_plan_marker(kind)].append(kind)
    with db.reader() as s:
        done = set(s.scalars(select(Meta.key).where(Meta.key.in_(list(markers)))))
    return sum(_seed_plan(db, marker, kinds) for marker, kinds in markers.items() if marker not in done)


def _seed_plan(db: Database, marker: str, plan_kinds: list[str]) -> int:
    try:
        with db.unit_of_work() as s:
            if s.get(Meta, marker) is not None:
                return 0
            s.add(Meta(key=marker, value=clock.now().isoformat()))
            s.flush()  # the marker first: a process seeding at the same moment fails here and rolls back
            kinds = set(
                s.scalars(select(MaintenanceTask.agreement_kind).where(MaintenanceTask.client_id.is_(None)).distinct())
            )
            written = 0
            for kind in plan_kinds:
                if kind in kinds:
                    continue
                for spec in rules.DEFAULT_PLANS[kind]:
                    s.add(
                        MaintenanceTask(
                            client_id=None,
                            agreement_kind=kind,
                            key=spec.key,
                            title=spec.title,
                            service=spec.service,
                            schedule=spec.schedule,
                            estimate_minutes=spec.estimate_minutes,
                            active=True,
                        )
                    )
                    written += 1
            return written
    except IntegrityError:
        return 0


def _plan_task(t: MaintenanceTask) -> rules.PlanTask:
    return rules.PlanTask(
        id=t.id,
        key=t.key,
        title=t.title,
        service=t.service,
        schedule=t.schedule,
        estimate_minutes=t.estimate_minutes,
        active=t.active,
        own=t.client_id is not None,
        technician=t.technician,
        last_done=t.last_done,
    )


# ------------------------------------------------------------------------------------- client plans


@dataclass
class ClientPlan:
    client_id: int
    key: str
    name: str
    klass: str
    kind: str | None
    agreement: Agreement | None
    tasks: list[rules.PlanTask] = field(default_factory=list)

    @property
    def anchor(self) -> date:
        return self.agreement.start if self.agreement else date(2000, 1, 1)

    def treatment(self, task: rules.PlanTask) -> rules.Treatment:
        a = self.agreement
        return rules.treatment(self.kind or "", task.service, a.covers if a else [], a.excludes if a else [])


def load_plans(session: Session, day: date, keys: list[str] | None = None) -> list[ClientPlan]:
    """Every client (or those of `keys`) with its plan kind on `day` and its effective plan, in a fixed
    number of queries."""
    views = client_views(session, day, keys=keys, with_devices=False)
    ids = [v.id for v in views]
    agreements: dict[int, list[Agreement]] = defaultdict(list)
    own: dict[int, list[MaintenanceTask]] = defaultdict(list)
    for chunk in _chunks(ids):
        for a in session.scalars(
            select(Agreement).where(Agreement.client_id.in_(chunk)).order_by(Agreement.start, Agreement.key)
        ):
            if a.start <= day and (a.end is None or day <= a.end):
                agreements[a.client_id].append(a)
        for t in session.scalars(
            select(MaintenanceTask).where(MaintenanceTask.client_id.in_(chunk)).order_by(MaintenanceTask.id)
        ):
            own[t.client_id or 0].append(t)
    defaults: dict[str, list[rules.PlanTask]] = defaultdict(list)
    for t in session.scalars(
        select(MaintenanceTask).where(MaintenanceTask.client_id.is_(None)).order_by(MaintenanceTask.id)
    ):
        defaults[t.agreement_kind or ""].append(_plan_task(t))
    plans = []
    for v in views:
        active = agreements[v.id]
        kind = rules.plan_kind(v.klass, {a.kind for a in active})
        agreement = next((a for a in active if a.kind == kind), None)
        tasks: list[rules.PlanTask] = []
        if kind is not None:
            mine = [_plan_task(t) for t in own[v.id] if t.agreement_kind in (None, kind)]
            tasks = rules.effective_plan(defaults.get(kind, []), mine)
        plans.append(ClientPlan(v.id, v.key, v.name, v.klass, kind, agreement, tasks))
    return plans


def _local_day(msp: MspSettings, now: datetime) -> date:
    return now.astimezone(zone_of(msp.timezone)).date()


# -------------------------------------------------------------------------------------------- due


@dataclass
class DueItem:
    client: str
    klass: str
    plan: str
    task: str
    title: str
    service: str
    action: str  # ticket | billable_ticket | notice
    occurrence: datetime | None = None
    ticket: int | None = None
    ticket_status: str | None = None
    new: bool = False
    notice: int | None = None
    decision: int | None = None
    answer: str | None = None
    minutes: int | None = None
    price: Decimal | None = None
    carried_from: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "class": self.klass,
            "plan": self.plan,
            "task": self.task,
            "title": self.title,
            "service": self.service,
            "action": self.action,
            "occurrence": self.occurrence.isoformat() if self.occurrence else None,
            "ticket": self.ticket,
            "ticket_status": self.ticket_status,
            "new": self.new,
            "notice": self.notice,
            "decision": self.decision,
            "answer": self.answer,
            "minutes": self.minutes,
            "price": None if self.price is None else str(self.price),
            "carried_from": self.carried_from,
        }


@dataclass
class DueReport:
    as_of: datetime
    month: str
    items: list[DueItem] = field(default_factory=list)
    tickets_opened: int = 0
    notices_written: int = 0
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "month": self.month,
            "dry_run": self.dry_run,
            "tickets_opened": self.tickets_opened,
            "notices_written": self.notices_written,
            "due": [i.as_json() for i in self.items],
        }


def _latest_handled(session: Session, client_ids: list[int]) -> dict[tuple[int, int], tuple[datetime, int | None]]:
    """The latest occurrence ticketed per (client, task), with its ticket."""
    o = MaintenanceOccurrence
    found: dict[tuple[int, int], tuple[datetime, int | None]] = {}
    for chunk in _chunks(client_ids):
        latest = (
            select(o.client_id, o.task_id, func.max(o.due_at).label("due_at"))
            .where(o.client_id.in_(chunk))
            .group_by(o.client_id, o.task_id)
            .subquery()
        )
        query = select(o.client_id, o.task_id, o.due_at, o.ticket_id).join(
            latest,
            (latest.c.client_id == o.client_id) & (latest.c.task_id == o.task_id) & (latest.c.due_at == o.due_at),
        )
        for cid, tid, due_at, ticket in session.execute(query):
            found[(cid, tid)] = (due_at, ticket)
    return found


def run_due(db: Database, keys: list[str] | None = None, dry_run: bool = False) -> DueReport:
    """What is due now, and (unless `dry_run`) its tickets and monthly notices, each made once.

    Clients are worked DUE_CHUNK at a time (in key order), each chunk in a transaction of its own: the first
    round of a month opens thousands of tickets for a big MSP, and one transaction would hold SQLite's write
    lock all along while intake's writer waits for it. Each occurrence is made once however the round is cut
    (a chunk reads what the ones before it made), so a round stopped half way is finished by the next."""
    ensure_default_plan(db)
    now = clock.now()
    with db.reader() as s:
        msp = msp_of(s)
        zone = zone_of(msp.timezone)
        if keys is not None:
            known = set(s.scalars(select(Client.key).where(Client.key.in_(keys))))
            if missing := [k for k in keys if k not in known]:
                raise NotFound(f"no client {missing[0]!r} (see `tenure client list`)")
            wanted = sorted(set(keys))
        else:
            wanted = list(s.scalars(select(Client.key).order_by(Client.key)))
    report = DueReport(now, rules.month_of(now, zone), dry_run=dry_run)
    for chunk in _chunks(wanted, DUE_CHUNK):
        with db.unit_of_work() as s:
            _due_in(s, list(chunk), zone, report)
    return report


def _due_in(s: Session, keys: list[str], zone: Any, report: DueReport) -> None:
    """`run_due` for the clients of `keys`, in the session's transaction: what is due added to `report`."""
    msp, now, dry_run = msp_of(s), report.as_of, report.dry_run
    plans = [p for p in load_plans(s, _local_day(msp, now), keys) if p.kind is not None]
    handled = _latest_handled(s, [p.client_id for p in plans])
    ticket_ids = [t for _, t in handled.values() if t is not None]
    statuses: dict[int, str] = {}
    for chunk in _chunks(ticket_ids):
        statuses.update(dict(s.execute(select(Ticket.id, Ticket.status).where(Ticket.id.in_(chunk))).all()))
    for plan in plans:
        for task in plan.tasks:
            action = plan.treatment(task)
            if action == "notice":
                continue
            last = handled.get((plan.client_id, task.id))
            due = rules.due_occurrence(task, zone, plan.anchor, now, last[0] if last else None)
            if due is None:
                continue
            item = DueItem(
                plan.key,
                plan.klass,
                plan.kind or "",
                task.key,
                task.title,
                task.service,
                action,
                due.occurrence,
                minutes=task.estimate_minutes,
            )
            if due.handled and last is not None:
                if last[0] != due.occurrence or statuses.get(last[1] or 0) == "closed":
                    continue  # done: the ticket of this occurrence is closed
                item.ticket, item.ticket_status = last[1], statuses.get(last[1] or 0)
            elif not dry_run:
                ticket = _open_ticket(s, plan, task, due.occurrence, action == "billable_ticket", zone, now)
                item.ticket, item.ticket_status, item.new = ticket.id, ticket.status, True
                report.tickets_opened += 1
            else:
                item.new = True
            report.items.append(item)
        if plan.kind == "call_before_service":
            written = _monthly(s, msp, plan, report.month, now, dry_run, report.items)
            report.notices_written += int(written)


# clients whose plans a page of what is due reads at a time (about 25 ms on SQLite), and a round of what is due
# works in one transaction
DUE_CHUNK = 50


def due_page(db: Database, client: str | None, limit: int, offset: int = 0) -> tuple[DueReport, bool]:
    """`run_due`'s dry run, `limit` of its items from `offset` (clients in key order, each client's tasks in
    plan order), and whether more follow. Clients' plans are read a chunk at a time until the page is full:
    what is due for five thousand clients is not worked out to show its first hundred items."""
    if client is not None:
        report = run_due(db, [client], dry_run=True)
        items = report.items
    else:
        with db.reader() as s:
            keys = list(s.scalars(select(Client.key).order_by(Client.key)))
        report, items = DueReport(clock.now(), ""), []
        for start in range(0, len(keys), DUE_CHUNK):
            chunk = keys[start : start + DUE_CHUNK]
            part = run_due(db, chunk, dry_run=True)
            report.as_of, report.month = part.as_of, part.month
            place = {key: i for i, key in enumerate(chunk)}
            items += sorted(part.items, key=lambda item: place[item.client])  # stable: plan order kept
            if len(items) > offset + limit:
                break
    report.items = items[offset : offset + limit]
    report.dry_run = True
    return report, len(items) > offset + limit


def _new_ticket(s: Session, client_id: int, title: str, fingerprint: str, billable: bool, now: datetime) -> Ticket:
    """A maintenance ticket (due for a managed client, or approved by a call-before-service one): the service
    desk's, with its targets (closing it records the task as done)."""
    from tenure.desk.service import open_ticket_in

    return open_ticket_in(
        s, client_id, title[:500], kind="maintenance", fingerprint=fingerprint[:200], billable=billable, now=now
    )


def _open_ticket(
    s: Session,
    plan: ClientPlan,
    task: rules.PlanTask,
    occurrence: datetime,
    billable: bool,
    zone: Any,
    now: datetime,
) -> Ticket:
    local = occurrence.astimezone(zone)
    ticket = _new_ticket(
        s,
        plan.client_id,
        f"{task.title} ({local:%Y-%m-%d})",
        f"maintenance:{plan.key}:{task.key}:{occurrence:%Y%m%dT%H%MZ}",
        billable,
        now,
    )
    s.add(
        MaintenanceOccurrence(
            client_id=plan.client_id, task_id=task.id, due_at=occurrence, ticket_id=ticket.id, created_at=now
        )
    )
    s.flush()
    return ticket


def _month_label(month: str) -> str:
    return date.fromisoformat(f"{month}-01").strftime("%B %Y")


def _when(occurrences: Sequence[datetime], zone: Any) -> str:
    days = [o.astimezone(zone) for o in occurrences]
    if not days:
        return ""
    if len(days) == 1:
        return f"planned for {days[0].day} {days[0]:%B}"
    return f"{len(days)} times this month"


def _monthly(
    s: Session, msp: MspSettings, plan: ClientPlan, month: str, now: datetime, dry_run: bool, out: list[DueItem]
) -> bool:
    """The client's notice for `month`: listed in `out`, and written if it is not there yet. True if written."""
    dedupe = f"maintenance:{plan.key}:{month}"
    existing = s.scalars(select(Notice).where(Notice.dedupe_key == dedupe)).first()
    if existing is not None:
        listed_rows = s.execute(
            select(MaintenanceDecision, MaintenanceTask.key, MaintenanceTask.title, MaintenanceTask.service)
            .join(MaintenanceTask, MaintenanceTask.id == MaintenanceDecision.task_id)
            .where(MaintenanceDecision.notice_id == existing.id)
            .order_by(MaintenanceDecision.id)
        )
        carried_from = {item["decision"]: item.get("carried_from") for item in (existing.data or {}).get("items", [])}
        for d, key, title, service in listed_rows:
            ticket = s.get(Ticket, d.ticket_id) if d.ticket_id else None
            ticket_status = ticket.status if ticket else None
            out.append(
                DueItem(
                    plan.key,
                    plan.klass,
                    plan.kind or "",
                    key,
                    title,
                    service,
                    "notice",
                    notice=existing.id,
                    decision=d.id,
                    answer=d.answer,
                    minutes=d.minutes,
                    price=d.price,
                    ticket=d.ticket_id,
                    ticket_status=ticket_status,
                    carried_from=carried_from.get(d.id),
                )
            )
        return False
    zone = zone_of(msp.timezone)
    listed = [t for t in plan.tasks if plan.treatment(t) == "notice"]
    by_key = {t.key: t for t in listed}
    # the latest earlier decision per task: deferred or unanswered ones come back
    earlier: dict[str, MaintenanceDecision] = {}
    task_keys = dict(
        s.execute(
            select(MaintenanceTask.id, MaintenanceTask.key).where(
                MaintenanceTask.id.in_(
                    select(MaintenanceDecision.task_id).where(MaintenanceDecision.client_id == plan.client_id)
                )
            )
        ).all()
    )
    for d in s.scalars(
        select(MaintenanceDecision)
        .where(MaintenanceDecision.client_id == plan.client_id, MaintenanceDecision.month < month)
        .order_by(MaintenanceDecision.month.desc(), MaintenanceDecision.id.desc())
    ):
        earlier.setdefault(task_keys.get(d.task_id, ""), d)
    carried = [
        (by_key[key], d.month, d.minutes or by_key[key].estimate_minutes)
        for key, d in earlier.items()
        if key in by_key and d.answer in (None, "deferred")
    ]
    rate = (plan.agreement.hourly_rate if plan.agreement else None) or msp.hourly_rate
    items = rules.monthly_items(listed, zone, plan.anchor, month, rate, carried)
    if not items:
        return False
    if dry_run:
        for item in items:
            out.append(
                DueItem(
                    plan.key,
                    plan.klass,
                    plan.kind or "",
                    item.task.key,
                    item.task.title,
                    item.task.service,
                    "notice",
                    minutes=item.minutes,
                    price=item.price,
                    new=True,
                    carried_from=item.carried_from,
                )
            )
        return False
    to = addresses(s, [plan.client_id], "maintenance").get(plan.client_id, [])
    notice = Notice(
        client_id=plan.client_id,
        kind="monthly_maintenance",
        dedupe_key=dedupe,
        to=to,
        cc=[],
        subject=f"{plan.name}: recommended maintenance for {_month_label(month)}"[:300],
        body_text="",
        body_html=None,
        data={},
        state="waiting" if to else "kept",
        error=None if to else "no contact with an e-mail address: kept on record, not sent",
        attempts=0,
        created_at=now,
    )
    s.add(notice)
    s.flush()
    # unanswered earlier items now on this list: their old links say so
    relisted = {item.task.key for item in items}
    stale = [d.id for key, d in earlier.items() if key in relisted and d.answer is None]
    if stale:
        s.execute(
            update(MaintenanceDecision)
            .where(MaintenanceDecision.id.in_(stale), MaintenanceDecision.answer.is_(None))
            .values(answer="superseded", note=f"listed again on the notice of {month}")
        )
    decisions = []
    for item in items:
        decision = MaintenanceDecision(
            client_id=plan.client_id,
            task_id=item.task.id,
            month=month,
            notice_id=notice.id,
            minutes=item.minutes,
            price=item.price,
        )
        s.add(decision)
        decisions.append(decision)
    s.flush()
    rows = []
    for item, decision in zip(items, decisions, strict=True):
        rows.append(
            {
                "decision": decision.id,
                "task": item.task.key,
                "title": item.task.title,
                "minutes": item.minutes,
                "price": str(item.price),
                "occurrences": [o.isoformat() for o in item.occurrences],
                "when": _when(item.occurrences, zone),
                "carried_from": item.carried_from,
                "approve": links.link_url({"k": "m", "d": decision.id, "a": "approve"}),
                "defer": links.link_url({"k": "m", "d": decision.id, "a": "defer"}),
            }
        )
        out.append(
            DueItem(
                plan.key,
                plan.klass,
                plan.kind or "",
                item.task.key,
                item.task.title,
                item.task.service,
                "notice",
                notice=notice.id,
                decision=decision.id,
                minutes=item.minutes,
                price=item.price,
                new=True,
                carried_from=item.carried_from,
            )
        )
    total = sum((item.price for item in items), Decimal("0.00"))
    total_minutes = sum(item.minutes for item in items)
    context = {
        "msp": {"name": msp.name, "currency": msp.currency},
        "client": {"name": plan.name, "key": plan.key},
        "subject": notice.subject,
        "today": now.astimezone(zone).date(),
        "month_label": _month_label(month),
        "items": rows,
        "rate": rate,
        "currency": msp.currency,
        "total": total,
        "total_minutes": total_minutes,
        "link_expires": (now + links.LINK_MAX_AGE).astimezone(zone).date(),
        "data": {},
        "links": {},
        "body": "",
    }
    notice.body_text, notice.body_html = render_notice("monthly_maintenance", context)
    notice.data = {
        "month": month,
        "agreement": plan.agreement.key if plan.agreement else None,
        "rate": str(rate),
        "currency": msp.currency,
        "total": str(total),
        "total_minutes": total_minutes,
        "items": rows,
        "links_signed_at": now.isoformat(),
        "audience": ["client"],
    }
    return True


# ---------------------------------------------------------------------------------------- answers


@dataclass
class DecisionView:
    id: int
    client_id: int
    client: str
    client_name: str
    task: str
    title: str
    month: str
    minutes: int | None
    price: Decimal | None
    answer: str | None
    answered_at: datetime | None
    ticket: int | None
    note: str | None
    currency: str
    msp_name: str


def decision_view(db: Database, decision_id: int) -> DecisionView | None:
    with db.reader() as s:
        row = s.execute(
            select(MaintenanceDecision, MaintenanceTask, Client)
            .join(MaintenanceTask, MaintenanceTask.id == MaintenanceDecision.task_id)
            .join(Client, Client.id == MaintenanceDecision.client_id)
            .where(MaintenanceDecision.id == decision_id)
        ).first()
        if row is None:
            return None
        d, t, c = row
        msp = s.scalars(select(MspSettings).limit(1)).first()
        return DecisionView(
            d.id,
            c.id,
            c.key,
            c.name,
            t.key,
            t.title,
            d.month,
            d.minutes,
            d.price,
            d.answer,
            d.answered_at,
            d.ticket_id,
            d.note,
            msp.currency if msp else "USD",
            msp.name if msp else "",
        )


def answer(db: Database, decision_id: int, verdict: str, note: str | None = None) -> tuple[bool, DecisionView]:
    """Record the client's answer once: (True, view) when this call recorded it, (False, view) when the item
    was already answered (or superseded). An approval opens a billable maintenance ticket."""
    if verdict not in ANSWERS:
        raise TenureError(f"an answer is one of {', '.join(ANSWERS)}, not {verdict!r}")
    now = clock.now()
    with db.unit_of_work() as s:
        row = s.execute(
            select(MaintenanceDecision, MaintenanceTask, Client)
            .join(MaintenanceTask, MaintenanceTask.id == MaintenanceDecision.task_id)
            .join(Client, Client.id == MaintenanceDecision.client_id)
            .where(MaintenanceDecision.id == decision_id)
        ).first()
        if row is None:
            raise NotFound(f"no maintenance decision {decision_id}")
        d, task, client = row
        changed = (
            s.connection()
            .execute(
                update(MaintenanceDecision)
                .where(MaintenanceDecision.id == decision_id, MaintenanceDecision.answer.is_(None))
                .values(answer=verdict, answered_at=now, note=(note or None) and note[:1000])
            )
            .rowcount
        )
        if changed == 1 and verdict == "approved":
            ticket = _new_ticket(
                s,
                client.id,
                f"{task.title} (approved by {client.name} for {_month_label(d.month)})",
                f"maintenance:{client.key}:{task.key}:{d.month}",
                True,
                now,
            )
            s.execute(
                update(MaintenanceDecision).where(MaintenanceDecision.id == decision_id).values(ticket_id=ticket.id)
            )
    view = decision_view(db, decision_id)
    assert view is not None
    return changed == 1, view


# ------------------------------------------------------------------------------------ plans and tasks


def _task_json(t: rules.PlanTask, zone: Any, anchor: date, now: datetime, action: str | None) -> dict[str, Any]:
    schedule = rules.parse_task_schedule(t.schedule)
    nxt = rules.next_after(schedule, zone, anchor, now)
    return {
        "key": t.key,
        "title": t.title,
        "service": t.service,
        "schedule": t.schedule,
        "estimate_minutes": t.estimate_minutes,
        "technician": t.technician,
        "own": t.own,
        "active": t.active,
        "next": nxt.isoformat() if nxt else None,
        "action": action,
    }


def show_plan(db: Database, client: str | None = None) -> dict[str, Any]:
    """The default plans per kind, or one client's effective plan with what each task becomes."""
    ensure_default_plan(db)
    now = clock.now()
    with db.reader() as s:
        msp = msp_of(s)
        zone = zone_of(msp.timezone)
        day = _local_day(msp, now)
        if client is None:
            kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for t in s.scalars(
                select(MaintenanceTask)
                .where(MaintenanceTask.client_id.is_(None))
                .order_by(MaintenanceTask.agreement_kind, MaintenanceTask.key)
            ):
                kinds[t.agreement_kind or "-"].append(_task_json(_plan_task(t), zone, day, now, None))
            return {"defaults": dict(kinds)}
        plans = load_plans(s, day, [client])
        if not plans:
            raise NotFound(f"no client {client!r} (see `tenure client list`)")
        plan = plans[0]
        return {
            "client": plan.key,
            "class": plan.klass,
            "plan": plan.kind,
            "agreement": plan.agreement.key if plan.agreement else None,
            "tasks": [_task_json(t, zone, plan.anchor, now, plan.treatment(t)) for t in plan.tasks],
        }


def own_plans(db: Database) -> list[dict[str, Any]]:
    """The clients with tasks of their own (replacing the default ones), by key: their number of own tasks."""
    with db.reader() as s:
        rows = s.execute(
            select(Client.key, Client.name, func.count(MaintenanceTask.id))
            .join(MaintenanceTask, MaintenanceTask.client_id == Client.id)
            .group_by(Client.key, Client.name)
            .order_by(Client.key)
        ).all()
    return [{"client": key, "name": name, "tasks": int(n)} for key, name, n in rows]


# set_task's refusals name the command line's option; the shells name the field
OPTION_FIELDS = {"--schedule": "schedule", "--service": "service", "--estimate": "estimate_minutes"}


def field_refusal(exc: TenureError) -> TenureError:
    """A refusal of `set_task` that names an option, as a ValidationFailed naming the field (so a form marks
    it and the API lists it in `invalid-params`); any other refusal as it is."""
    option, sep, reason = str(exc).partition(": ")
    if sep and option in OPTION_FIELDS and not isinstance(exc, ValidationFailed):
        return ValidationFailed([f"{OPTION_FIELDS[option]}: {reason}"])
    return exc


def set_task(
    db: Database,
    key: str,
    *,
    client: str | None = None,
    kind: str | None = None,
    title: str | None = None,
    schedule: str | None = None,
    estimate_minutes: int | None = None,
    service: str | None = None,
    technician: str | None = None,
    active: bool | None = None,
) -> dict[str, Any]:
    """Create or change a task: a client's own (overriding the default of the same key) or a default one."""
    if (client is None) == (kind is None):
        raise TenureError("name either a client (--client KEY) or an agreement kind (--kind KIND)")
    if kind is not None and kind not in AGREEMENT_KINDS:
        raise TenureError(f"kind {kind!r} is not one of {', '.join(AGREEMENT_KINDS)}")
    if schedule is not None and (problem := rules.check_schedule(schedule)):
        raise TenureError(f"--schedule: {problem}")
    if service is not None and service not in SERVICES:
        raise TenureError(f"--service: {service!r} is not one of {', '.join(SERVICES)}")
    if estimate_minutes is not None and not 0 < estimate_minutes <= 24 * 60:
        raise TenureError(f"--estimate: minutes between 1 and 1440, not {estimate_minutes}")
    if not key or len(key) > 100:
        raise TenureError("a task key is 1 to 100 characters")
    ensure_default_plan(db)
    with db.unit_of_work() as s:
        client_id = None
        if client is not None:
            client_id = s.scalars(select(Client.id).where(Client.key == client)).first()
            if client_id is None:
                raise NotFound(f"no client {client!r} (see `tenure client list`)")
            task = s.scalars(
                select(MaintenanceTask).where(MaintenanceTask.client_id == client_id, MaintenanceTask.key == key)
            ).first()
        else:
            task = s.scalars(
                select(MaintenanceTask).where(
                    MaintenanceTask.client_id.is_(None),
                    MaintenanceTask.agreement_kind == kind,
                    MaintenanceTask.key == key,
                )
            ).first()
        created = task is None
        if task is None:
            base = None
            if client_id is not None:
                base = s.scalars(
                    select(MaintenanceTask)
                    .where(MaintenanceTask.client_id.is_(None), MaintenanceTask.key == key)
                    .order_by(MaintenanceTask.id)
                ).first()
            if base is None and (title is None or schedule is None):
                raise TenureError(f"there is no default task {key!r} to start from: give --title and --schedule")
            task = MaintenanceTask(
                client_id=client_id,
                agreement_kind=kind,
                key=key,
                title=base.title if base else "",
                service=base.service if base else "maintenance",
                schedule=base.schedule if base else "",
                estimate_minutes=base.estimate_minutes if base else 30,
                active=True,
                technician=base.technician if base else None,
            )
            s.add(task)
        for name, value in (
            ("title", title),
            ("schedule", schedule),
            ("estimate_minutes", estimate_minutes),
            ("service", service),
            ("technician", technician),
            ("active", active),
        ):
            if value is not None and getattr(task, name) != value:
                setattr(task, name, value)
        s.flush()
        return {
            "task": task.key,
            "client": client,
            "kind": kind,
            "created": created,
            "title": task.title,
            "schedule": task.schedule,
            "estimate_minutes": task.estimate_minutes,
            "service": task.service,
            "technician": task.technician,
            "active": task.active,
        }


# ----------------------------------------------------------------------------------------- calendar


def usual_technicians(session: Session, client_ids: list[int], day: date) -> dict[int, str]:
    """Per client, the technician who logged the most minutes in the 180 days before `day`."""
    totals: dict[int, list[tuple[int, str]]] = defaultdict(list)
    since = day - timedelta(days=180)
    for chunk in _chunks(client_ids):
        for cid, tech, minutes in session.execute(
            select(TimeEntry.client_id, TimeEntry.technician, func.sum(TimeEntry.minutes))
            .where(
                TimeEntry.client_id.in_(chunk),
                TimeEntry.technician.is_not(None),
                TimeEntry.date > since,
                TimeEntry.voided_at.is_(None),
            )
            .group_by(TimeEntry.client_id, TimeEntry.technician)
        ):
            totals[cid].append((int(minutes or 0), str(tech)))
    return {cid: sorted(rows, key=lambda r: (-r[0], r[1]))[0][1] for cid, rows in totals.items() if rows}


def calendar_events(db: Database, client: str | None = None, technician: str | None = None) -> dict[str, Any]:
    """The events of a client's plan, or of every task a technician does (their own, or by default the
    client's usual technician's), for the calendar feed."""
    ensure_default_plan(db)
    now = clock.now()
    with db.reader() as s:
        msp = msp_of(s)
        zone = zone_of(msp.timezone)
        day = _local_day(msp, now)
        plans = [p for p in load_plans(s, day, [client] if client else None) if p.kind is not None]
        usual = usual_technicians(s, [p.client_id for p in plans], day) if technician is not None else {}
        events: list[rules.CalendarEvent] = []
        for plan in plans:
            for task in plan.tasks:
                doer = task.technician or usual.get(plan.client_id)
                if technician is not None and (doer or "").casefold() != technician.casefold():
                    continue
                action = plan.treatment(task)
                note = {
                    "ticket": "covered by the agreement",
                    "billable_ticket": "billable: not covered by the agreement",
                    "notice": "on the monthly list: done only if the client approves it",
                }[action]
                description = (
                    f"{task.title}\nClient: {plan.name}\nService: {task.service}\n"
                    f"Estimate: {task.estimate_minutes} minutes\n{note}" + (f"\nTechnician: {doer}" if doer else "")
                )
                events += rules.calendar_events(
                    f"tenure-{plan.key}-{task.key}-{task.id}",
                    f"{plan.name}: {task.title}",
                    description,
                    task,
                    zone,
                    plan.anchor,
                    now,
                )
        name = f"{msp.name}: " + (
            f"maintenance of {plans[0].name}" if client and plans else f"maintenance, {technician or client}"
        )
        return {"name": name, "zone": msp.timezone or "UTC", "events": events, "msp": msp.name}


def _feed_subject(client: str | None, technician: str | None) -> tuple[str, str]:
    if (client is None) == (technician is None):
        raise TenureError("name either a client (--client KEY) or a technician (--technician NAME)")
    return ("client", client) if client is not None else ("technician", (technician or "").casefold())


def _generation(s: Session, kind: str, subject: str) -> CalendarFeed | None:
    return s.scalars(
        select(CalendarFeed).where(CalendarFeed.subject_kind == kind, CalendarFeed.subject == subject)
    ).first()


def is_technician(s: Session, name: str) -> bool:
    """A user, or a name on time entries or maintenance tasks (the names a technician's feed is matched by),
    compared without case as the feed compares them."""
    from tenure.accounts.models import User  # accounts is a feature of its own; only its table is read here

    wanted = name.strip().casefold()
    if not wanted:
        return False
    for column in (User.username, TimeEntry.technician, MaintenanceTask.technician):
        names = s.scalars(select(column).where(column.is_not(None)).distinct())
        if any(found.casefold() == wanted for found in names):
            return True
    return False


def calendar_feed(
    db: Database, *, client: str | None = None, technician: str | None = None, rotate: bool = False
) -> dict[str, Any]:
    """The path of a client's or a technician's calendar feed. `rotate` starts a new generation first: every
    path handed out before then answers 404. An unknown client or technician is refused."""
    kind, subject = _feed_subject(client, technician)
    with db.unit_of_work() as s:
        if client is not None and s.scalars(select(Client.id).where(Client.key == client)).first() is None:
            raise NotFound(f"no client {client!r} (see `tenure client list`)")
        if technician is not None and not is_technician(s, technician):
            raise NotFound(
                f"no technician {technician!r}: not a user, and no time entry or maintenance task names them "
                "(see `tenure user list`)"
            )
        row = _generation(s, kind, subject)
        if rotate:
            if row is None:
                row = CalendarFeed(subject_kind=kind, subject=subject, generation=0)
                s.add(row)
            row.generation += 1
            row.rotated_at = clock.now()
        generation = row.generation if row is not None else 0
    path = links.calendar_path(client=client, technician=technician, generation=generation)
    return {"path": path, "url": links.base_url() + path, "generation": generation, "rotated": rotate}


def check_calendar_token(db: Database, who: dict[str, str]) -> None:
    """LinkInvalid unless a calendar token (links.read_calendar_token) is of the feed's current generation and
    its client still exists."""
    kind, subject = _feed_subject(who.get("c"), who.get("t"))
    with db.reader() as s:
        row = _generation(s, kind, subject)
        current = row.generation if row is not None else 0
        gone = kind == "client" and s.scalars(select(Client.id).where(Client.key == subject)).first() is None
    if gone or who.get("g", "0") != str(current):
        raise links.LinkInvalid("this calendar address was revoked")


def worker_job(db: Database) -> int:
    """The worker's maintenance round: tickets and monthly notices due now (nothing before the MSP is set up)."""
    with db.reader() as s:
        if s.scalars(select(MspSettings.id).limit(1)).first() is None:
            return 0
    report = run_due(db)
    return report.tickets_opened + report.notices_written

"""The service desk: tickets people work (DOMAIN.md "The service desk", INTERFACE.md "Tickets").

Each use case runs in one unit of work and returns the ticket as `ticket_json` shows it; the `*_in` forms do
the same inside a caller's session (mail in, quotes, maintenance) and return the `Ticket`.

    open_ticket(db, client, title, kind=, priority=, device=, description=, assignee=, ...)   -> view
    open_ticket_in(s, client_id, title, ...)                                                  -> Ticket
    ticket_view(db, n)              the ticket with its notes, minutes and time entries (who paid each)
    tickets_page(db, status=, client=, assignee=, priority=, kind=, breached=, queue=, ...)   -> Page
    assign_ticket(db, n, assignee)  a username, or None to unassign
    add_note(db, n, text, public=False, author=None);  add_note_in(s, ticket, text, public, author)
    change_status(db, n, status, note=None);           change_status_in(s, ticket, status, now)
    close_ticket(db, n, note=None);  close_ticket_in(s, ticket, now)  (a maintenance ticket: its task done)
    reopen_ticket(db, n, note=None)  a closed or resolved ticket goes back to in_progress
    approve_ticket(db, n, note=None) a quote approved: billable work, in_progress
    update_ticket(db, n, **changes)  title, description, kind, priority (due times again), device, assignee,
                                     status (the PATCH of the API)
    due_for(s, client_id, priority, opened_at)   the MSP's targets for that client's agreement kind

Rules (moves, targets, breaches) are `desk.rules`; vocabularies are `tenure.vocabulary`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.accounts.models import User
from tenure.agreements.models import Agreement, TimeEntry
from tenure.agreements.service import paid_now
from tenure.clients.models import Client, Device
from tenure.db.engine import Database
from tenure.db.paging import Page, count
from tenure.db.uow import current_actor
from tenure.desk import rules
from tenure.desk.rules import DeskError
from tenure.errors import NotFound, TenureError
from tenure.maintenance.models import MaintenanceDecision, MaintenanceOccurrence, MaintenanceTask
from tenure.msp.models import MspSettings
from tenure.text import one_line
from tenure.triage.models import Ticket, TicketNote
from tenure.vocabulary import ACTIVE_TICKET_STATUSES, DEFAULT_TICKET_PRIORITY, OPEN_TICKET_STATUSES, TICKET_STATUSES

# `status` filters besides the statuses themselves
STATUS_GROUPS = {"open": OPEN_TICKET_STATUSES, "active": ACTIVE_TICKET_STATUSES, "all": TICKET_STATUSES}
MAX_TEXT = 20000


def _checked(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except DeskError as e:
        raise TenureError(str(e)) from None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _author(author: str | None) -> str:
    """Who wrote a note: the name given, or the acting user (`user:ana` -> `ana`)."""
    name = author or current_actor().split(":", 1)[-1] or "system"
    return one_line(name, "author")[:200]


# ------------------------------------------------------------------------------------------- reading


def _ticket(s: Session, n: int, lock: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.id == n)
    ticket = s.scalars(query.with_for_update() if lock else query).first()
    if ticket is None:
        raise NotFound(f"no ticket #{n}")
    return ticket


def _names(s: Session, tickets: list[Ticket]) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """Client keys, device keys and assignees' usernames of these tickets."""
    clients = {t.client_id for t in tickets}
    devices = {t.device_id for t in tickets if t.device_id}
    users = {t.assignee_id for t in tickets if t.assignee_id}
    return (
        dict(s.execute(select(Client.id, Client.key).where(Client.id.in_(clients))).all()) if clients else {},
        dict(s.execute(select(Device.id, Device.key).where(Device.id.in_(devices))).all()) if devices else {},
        dict(s.execute(select(User.id, User.username).where(User.id.in_(users))).all()) if users else {},
    )


def _minutes(s: Session, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    query = (
        select(TimeEntry.ticket_id, func.sum(TimeEntry.minutes))
        .where(TimeEntry.ticket_id.in_(ids), TimeEntry.voided_at.is_(None))
        .group_by(TimeEntry.ticket_id)
    )
    return {tid: int(m or 0) for tid, m in s.execute(query)}


def breach_of(t: Ticket, now: datetime) -> str | None:
    """`response` (nobody answered by `respond_by`), `resolution` (not resolved by `due_at`), or None."""
    if rules.breached(t.status, t.due_at, now):
        return "resolution"
    if t.status == "new" and t.responded_at is None and t.respond_by is not None and t.respond_by < now:
        return "response"
    return None


def ticket_rows(s: Session, tickets: list[Ticket], now: datetime | None = None) -> list[dict[str, Any]]:
    """Tickets as lists show them: INTERFACE.md's shape without the notes, with the breach."""
    now = now or clock.now()
    clients, devices, users = _names(s, tickets)
    minutes = _minutes(s, [t.id for t in tickets])
    rows = []
    for t in tickets:
        breach = breach_of(t, now)
        rows.append(
            {
                "ticket": t.id,
                "client": clients.get(t.client_id),
                "device": devices.get(t.device_id or 0),
                "kind": t.kind,
                "priority": t.priority,
                "status": t.status,
                "assignee": users.get(t.assignee_id or 0),
                "title": t.title,
                "billable": t.billable,
                "alerts": t.alert_count,
                "opened_at": t.opened_at.isoformat(),
                "respond_by": _iso(t.respond_by),
                "due_at": _iso(t.due_at),
                "closed_at": _iso(t.closed_at),
                "minutes": minutes.get(t.id, 0),
                "breached": breach is not None,
                "breach": breach,
            }
        )
    return rows


def ticket_json(s: Session, ticket: Ticket, now: datetime | None = None) -> dict[str, Any]:
    """One ticket in INTERFACE.md's shape, with its notes (oldest first) and description."""
    row = ticket_rows(s, [ticket], now)[0]
    query = select(TicketNote).where(TicketNote.ticket_id == ticket.id).order_by(TicketNote.at, TicketNote.id)
    notes = s.scalars(query)
    row["description"] = ticket.description
    row["opened_by"] = ticket.opened_by  # None on a ticket opened before Tenure kept it (migration 0021)
    row["notes"] = [{"at": n.at.isoformat(), "author": n.author, "public": n.public, "text": n.text} for n in notes]
    return row


def _time_on(s: Session, ticket: Ticket) -> list[dict[str, Any]]:
    """The time logged against the ticket, each entry with the layers that pay it (coverage decides)."""
    entries = list(
        s.scalars(
            select(TimeEntry)
            .where(TimeEntry.ticket_id == ticket.id, TimeEntry.voided_at.is_(None))
            .order_by(TimeEntry.date, TimeEntry.id)
        )
    )
    if not entries:
        return []
    paid = paid_now(s, entries)
    return [
        {
            "id": e.id,
            "date": e.date.isoformat(),
            "minutes": e.minutes,
            "work_type": e.work_type,
            "technician": e.technician,
            "note": e.note,
            "paid_by": paid[e.id],
        }
        for e in entries
    ]


def ticket_view(db: Database, n: int) -> dict[str, Any]:
    """`ticket_json` and the time logged on it (`time`: entries with who paid them)."""
    with db.reader() as s:
        ticket = _ticket(s, n)
        view = ticket_json(s, ticket)
        view["time"] = _time_on(s, ticket)
        return view


def _filters(
    s: Session,
    status: str | None,
    client: str | None,
    assignee: str | None,
    priority: str | None,
    kind: str | None,
    breached: bool,
    now: datetime,
) -> list[Any]:
    where: list[Any] = []
    if status:
        group = STATUS_GROUPS.get(status)
        if group is None:
            _checked(rules.check_choice, "status", status, (*TICKET_STATUSES, *STATUS_GROUPS))
            where.append(Ticket.status == status)
        elif status != "all":
            where.append(Ticket.status.in_(group))
    if client:
        cid = s.scalar(select(Client.id).where(Client.key == client))
        if cid is None:
            raise NotFound(f"no client {client!r}")
        where.append(Ticket.client_id == cid)
    if assignee is not None:
        where.append(Ticket.assignee_id.is_(None) if assignee == "" else Ticket.assignee_id == _user_id(s, assignee))
    if priority:
        where.append(Ticket.priority == _checked(rules.check_priority, priority))
    if kind:
        where.append(Ticket.kind == _checked(rules.check_kind, kind))
    if breached:
        where.append(
            or_(
                and_(Ticket.status.in_(ACTIVE_TICKET_STATUSES), Ticket.due_at < now),
                and_(Ticket.status == "new", Ticket.responded_at.is_(None), Ticket.respond_by < now),
            )
        )
    return where


def tickets_page(
    db: Database,
    client: str | None = None,
    status: str | None = None,
    queue: bool = False,
    limit: int = 50,
    offset: int = 0,
    *,
    assignee: str | None = None,
    priority: str | None = None,
    kind: str | None = None,
    breached: bool = False,
) -> Any:
    """Tickets newest first, filtered. `status` is a status or `open` (not closed), `active` (waiting on
    someone) or `all`; `queue` is `active` when no status is given. `assignee=""`: nobody's."""

    now = clock.now()
    with db.reader() as s:
        where = _filters(s, status or ("active" if queue else None), client, assignee, priority, kind, breached, now)
        ids = select(Ticket.id).where(*where)
        total, exact = count(s, ids)
        tickets = list(s.scalars(select(Ticket).where(*where).order_by(Ticket.id.desc()).limit(limit).offset(offset)))
        return Page(ticket_rows(s, tickets, now), total, exact, limit, offset)


# ------------------------------------------------------------------------------------------- opening


def _user_id(s: Session, username: str) -> int:
    found = s.execute(select(User.id, User.active).where(User.username == username)).first()
    if found is None:
        raise NotFound(f"no user {username!r} (see `tenure user list`)")
    if not found.active:
        raise TenureError(f"user {username!r} is deactivated: tickets go to active users")
    return int(found.id)


def _device_id(s: Session, client_id: int, device: str) -> int:
    found = s.scalar(
        select(Device.id).where(Device.client_id == client_id, or_(Device.key == device, Device.hostname == device))
    )
    if found is None:
        raise NotFound(f"no device {device!r} of this client (see `tenure client show`)")
    return int(found)


def due_for(s: Session, client_id: int, priority: str, opened_at: datetime) -> rules.DueTimes:
    """The response and resolution due times of the MSP's targets for this client's agreement kind today."""
    day = opened_at.date()
    kinds = s.scalars(
        select(Agreement.kind).where(
            Agreement.client_id == client_id, Agreement.start <= day, or_(Agreement.end.is_(None), Agreement.end >= day)
        )
    ).all()
    targets = s.scalar(select(MspSettings.ticket_targets).limit(1)) or {}  # no MSP yet: the defaults
    return rules.due_times(targets, rules.agreement_kind_for(list(kinds)), priority, opened_at)


def open_ticket_in(
    s: Session,
    client_id: int,
    title: str,
    *,
    kind: str = "incident",
    priority: str = DEFAULT_TICKET_PRIORITY,
    device_id: int | None = None,
    description: str | None = None,
    assignee_id: int | None = None,
    billable: bool = False,
    status: str = "new",
    fingerprint: str | None = None,
    now: datetime | None = None,
) -> Ticket:
    """A new ticket in the caller's session, its due times from the MSP's targets."""
    now = now or clock.now()
    title = one_line(title.strip(), "title")
    if not title:
        raise TenureError("title: a ticket needs a title")
    _checked(rules.check_kind, kind)
    priority = _checked(rules.check_priority, priority)
    _checked(rules.check_choice, "status", status, ACTIVE_TICKET_STATUSES)
    due = due_for(s, client_id, priority, now)
    ticket = Ticket(
        client_id=client_id,
        kind=kind,
        status=status,
        title=title[:500],
        description=(description or None) and description[:MAX_TEXT],
        fingerprint=fingerprint,
        billable=billable,
        opened_at=now,
        alert_count=0,
        device_id=device_id,
        priority=priority,
        assignee_id=assignee_id,
        respond_by=due.respond_by,
        due_at=due.due_at,
        opened_by=current_actor(),
    )
    s.add(ticket)
    s.flush()
    return ticket


def open_ticket(
    db: Database,
    client: str,
    title: str,
    *,
    kind: str = "incident",
    priority: str = DEFAULT_TICKET_PRIORITY,
    device: str | None = None,
    description: str | None = None,
    assignee: str | None = None,
    billable: bool = False,
) -> dict[str, Any]:
    """Open a ticket by hand (a phone call, a walk-in): client by key, device by key or hostname."""
    with db.unit_of_work() as s:
        cid = s.scalar(select(Client.id).where(Client.key == client))
        if cid is None:
            raise NotFound(f"no client {client!r} (see `tenure client list`)")
        ticket = open_ticket_in(
            s,
            cid,
            title,
            kind=kind,
            priority=priority,
            device_id=_device_id(s, cid, device) if device else None,
            description=description,
            assignee_id=_user_id(s, assignee) if assignee else None,
            billable=billable,
        )
        return ticket_json(s, ticket)


# ------------------------------------------------------------------------------------------- working


def add_note_in(
    s: Session, ticket: Ticket, text: str, public: bool = False, author: str | None = None, at: datetime | None = None
) -> TicketNote:
    """A note on the ticket; a public one is its first response if it had none."""
    text = text.strip()
    if not text:
        raise TenureError("text: a note needs some text")
    at = at or clock.now()
    note = TicketNote(ticket_id=ticket.id, at=at, author=_author(author), public=public, text=text[:MAX_TEXT])
    s.add(note)
    if public and ticket.responded_at is None:
        ticket.responded_at = at
    s.flush()
    return note


def change_status_in(s: Session, ticket: Ticket, status: str, now: datetime | None = None) -> Ticket:
    """Move the ticket to `status` (desk.rules.check_move); closing goes through `close_ticket_in`."""
    now = now or clock.now()
    _checked(rules.check_move, ticket.status, status)
    if status == "closed":
        return close_ticket_in(s, ticket, now)
    ticket.status = status
    if ticket.responded_at is None and rules.answers(status, False):
        ticket.responded_at = now
    ticket.resolved_at = now if status == "resolved" else None
    s.flush()
    return ticket


def close_ticket_in(s: Session, ticket: Ticket, now: datetime | None = None) -> Ticket:
    """Close the ticket; a maintenance ticket's task is recorded as done (its occurrence, and the client's own
    task's `last_done`), so the next due date follows from it."""
    now = now or clock.now()
    if ticket.status == "closed":
        raise TenureError(f"ticket #{ticket.id} is already closed")
    ticket.status, ticket.closed_at = "closed", now
    ticket.resolved_at = ticket.resolved_at or now
    ticket.responded_at = ticket.responded_at or now
    if ticket.kind == "maintenance":
        _maintenance_done(s, ticket, now)
    s.flush()
    return ticket


def _maintenance_done(s: Session, ticket: Ticket, now: datetime) -> None:
    task_ids = set()
    for occurrence in s.scalars(select(MaintenanceOccurrence).where(MaintenanceOccurrence.ticket_id == ticket.id)):
        occurrence.done_at = occurrence.done_at or now
        task_ids.add(occurrence.task_id)
    task_ids.update(s.scalars(select(MaintenanceDecision.task_id).where(MaintenanceDecision.ticket_id == ticket.id)))
    if not task_ids:
        return
    from tenure.intake.schedule import zone_of
    from tenure.notices.service import msp_of

    day = now.astimezone(zone_of(msp_of(s).timezone)).date()
    for task in s.scalars(select(MaintenanceTask).where(MaintenanceTask.id.in_(task_ids))):
        # a default-plan task is shared by every client of its kind: its occurrence row records this client's
        if task.client_id == ticket.client_id and (task.last_done is None or task.last_done < day):
            task.last_done = day


def _work(db: Database, n: int, change: Any) -> dict[str, Any]:
    with db.unit_of_work() as s:
        ticket = _ticket(s, n, lock=True)
        change(s, ticket)
        s.flush()
        return ticket_json(s, ticket)


def _maybe_note(s: Session, ticket: Ticket, note: str | None) -> None:
    if note and note.strip():
        add_note_in(s, ticket, note, public=False)


def assign_ticket(db: Database, n: int, assignee: str | None, note: str | None = None) -> dict[str, Any]:
    """Give the ticket to a user (by username), or to nobody (None or "")."""

    def change(s: Session, ticket: Ticket) -> None:
        ticket.assignee_id = _user_id(s, assignee) if assignee else None
        _maybe_note(s, ticket, note)

    return _work(db, n, change)


def add_note(
    db: Database, n: int, text: str, public: bool = False, author: str | None = None
) -> dict[str, Any]:
    return _work(db, n, lambda s, t: add_note_in(s, t, text, public, author))


def change_status(db: Database, n: int, status: str, note: str | None = None) -> dict[str, Any]:
    def change(s: Session, ticket: Ticket) -> None:
        change_status_in(s, ticket, status)
        _maybe_note(s, ticket, note)

    return _work(db, n, change)


def close_ticket(db: Database, n: int, note: str | None = None) -> dict[str, Any]:
    def change(s: Session, ticket: Ticket) -> None:
        close_ticket_in(s, ticket)
        _maybe_note(s, ticket, note)

    return _work(db, n, change)


def reopen_ticket(db: Database, n: int, note: str | None = None) -> dict[str, Any]:
    def change(s: Session, ticket: Ticket) -> None:
        _checked(rules.check_reopen, ticket.status)
        ticket.status, ticket.closed_at, ticket.resolved_at = rules.REOPENED, None, None
        _maybe_note(s, ticket, note)

    return _work(db, n, change)


def approve_ticket(db: Database, n: int, note: str | None = None) -> dict[str, Any]:
    """The client approved the quote: the ticket is billable work, in progress."""

    def change(s: Session, ticket: Ticket) -> None:
        if ticket.status != "awaiting_approval":
            raise TenureError(f"ticket #{ticket.id} is {ticket.status}: only an awaiting_approval ticket is approved")
        change_status_in(s, ticket, "in_progress")
        ticket.billable = True
        _maybe_note(s, ticket, note)

    return _work(db, n, change)


UPDATABLE = ("title", "description", "kind", "priority", "device", "assignee", "status", "billable")


def update_ticket(db: Database, n: int, changes: dict[str, Any], note: str | None = None) -> dict[str, Any]:
    """Change some of UPDATABLE at once (the API's PATCH); a new priority sets the due times again."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise TenureError(f"{unknown[0]}: not a field of a ticket that can be changed ({', '.join(UPDATABLE)})")

    def change(s: Session, ticket: Ticket) -> None:
        if "title" in changes:
            title = one_line(str(changes["title"] or "").strip(), "title")
            if not title:
                raise TenureError("title: a ticket needs a title")
            ticket.title = title[:500]
        if "description" in changes:
            ticket.description = (changes["description"] or None) and str(changes["description"])[:MAX_TEXT]
        if "kind" in changes:
            ticket.kind = _checked(rules.check_kind, str(changes["kind"]))
        if "priority" in changes:
            priority = _checked(rules.check_priority, str(changes["priority"]))
            if priority != ticket.priority:
                due = due_for(s, ticket.client_id, priority, ticket.opened_at)
                ticket.priority, ticket.respond_by, ticket.due_at = priority, due.respond_by, due.due_at
        if "device" in changes:
            device = changes["device"]
            ticket.device_id = _device_id(s, ticket.client_id, str(device)) if device else None
        if "assignee" in changes:
            ticket.assignee_id = _user_id(s, str(changes["assignee"])) if changes["assignee"] else None
        if "billable" in changes:
            ticket.billable = bool(changes["billable"])
        if "status" in changes and changes["status"] != ticket.status:
            target = str(changes["status"])
            if ticket.status in ("closed", "resolved") and target == rules.REOPENED:
                ticket.status, ticket.closed_at, ticket.resolved_at = target, None, None
            else:
                change_status_in(s, ticket, target)
        _maybe_note(s, ticket, note)

    return _work(db, n, change)

"""What happened to an object: its change log (who, when, before → after), newest first.

Objects are named as a person names them: a client, agreement, device… by key; a contact or a time entry
by its id; an invoice by its number; a ticket by its number.

A ticket's creation is told from its row (`opened_at`, `opened_by`), not from a log row (`Ticket`'s
docstring): an entry like any other, its state the one the ticket's first logged change started from, or
the ticket's state now if nothing changed it since. A ticket opened before that (migration 0021) has its
creation in the log, and no `opened_by`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from tenure.billing.models import Invoice
from tenure.book.shapes import KINDS
from tenure.clients.models import Client
from tenure.db.changelog import ObjectChange
from tenure.db.engine import Database
from tenure.errors import NotFound, ValidationFailed
from tenure.triage.models import Ticket

# a name a person uses -> (table, model, column that names one)
_NAMED: dict[str, tuple[str, Any, Any]] = {
    "client": ("client", Client, Client.key),
    "invoice": ("invoice", Invoice, Invoice.number),
    "ticket": ("ticket", Ticket, Ticket.id),
}
for _kind in KINDS.values():
    _model = _kind.model
    _name = _kind.label.replace(" ", "-").replace("vendor-account", "account")
    _NAMED[_name] = (_model.__tablename__, _model, _model.key if _kind.keyed else _model.id)

OBJECTS = tuple(sorted(_NAMED))


def change_json(c: ObjectChange) -> dict[str, Any]:
    before, after = c.before or {}, c.after or {}
    fields = sorted(set(before) | set(after))
    changed = {k: [before.get(k), after.get(k)] for k in fields if before.get(k) != after.get(k)}
    return {
        "at": c.time.isoformat(),
        "actor": c.actor,
        "action": c.action,
        "object": c.object_type,
        "id": c.object_id,
        "label": c.object_label,
        "changed": changed if c.action == "update" else {},
        "before": c.before,
        "after": c.after,
    }


def _object_id(s: Session, name: str, key: str) -> tuple[str, int]:
    if name not in _NAMED:
        raise ValidationFailed([f"object: {name!r} is not one of {', '.join(OBJECTS)}"])
    table, model, column = _NAMED[name]
    number = int(key) if key.isdigit() and len(key) <= 18 else None  # an id, as lists and commands print them
    if column is model.id and number is None:
        raise ValidationFailed([f"key: a {name} is named by its number, not {key!r}"])
    found = s.scalar(select(model.id).where(column == (number if column is model.id else key)))
    if found is None and column is not model.id and number is not None:
        found = s.scalar(select(model.id).where(model.id == number))  # a keyed object named by its id
    if found is None:
        # a deleted object is found by its number, or by its last label, in the log
        named = ObjectChange.object_label == key
        if number is not None:
            named = or_(named, ObjectChange.object_id == number)
        found = s.scalar(
            select(ObjectChange.object_id)
            .where(ObjectChange.object_type == table, named)
            .order_by(ObjectChange.id.desc())
            .limit(1)
        )
    if found is None:
        raise NotFound(f"no {name} {key!r}")
    return table, int(found)


def _opened_json(s: Session, tickets: list[Ticket]) -> dict[int, dict[str, Any]]:
    """The creation entries of tickets whose creation is not a log row, by ticket id: two statements for all."""
    if not tickets:
        return {}
    ids = [t.id for t in tickets]
    first_changes = (
        select(func.min(ObjectChange.id))
        .where(ObjectChange.object_type == "ticket", ObjectChange.object_id.in_(ids))
        .group_by(ObjectChange.object_id)
    )
    started = {c.object_id: c.before for c in s.scalars(select(ObjectChange).where(ObjectChange.id.in_(first_changes)))}
    entries = {}
    for t in tickets:
        state = started.get(t.id) or t.changelog_state()
        entries[t.id] = {
            "at": t.opened_at.isoformat(),
            "actor": t.opened_by,
            "action": "create",
            "object": "ticket",
            "id": t.id,
            "label": f"#{t.id} {state.get('title', t.title)}"[:200],
            "changed": {},
            "before": None,
            "after": state,
        }
    return entries


def _object_page(s: Session, table: str, object_id: int, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """One object's log rows, newest first, and how many it has."""
    where = (ObjectChange.object_type == table) & (ObjectChange.object_id == object_id)
    total = s.scalar(select(func.count()).select_from(ObjectChange).where(where)) or 0
    rows = s.scalars(select(ObjectChange).where(where).order_by(ObjectChange.id.desc()).limit(limit).offset(offset))
    return total, [change_json(c) for c in rows]


def _ticket_page(s: Session, ticket_id: int, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """A ticket's log, newest first, with its creation last when its row tells it (`opened_by` set)."""
    logged, changes = _object_page(s, "ticket", ticket_id, limit, offset)
    opened = s.scalar(select(Ticket).where(Ticket.id == ticket_id, Ticket.opened_by.is_not(None)))
    if opened is None:
        return logged, changes
    if offset <= logged < offset + limit:
        changes.append(_opened_json(s, [opened])[opened.id])
    return logged + 1, changes


def _client_page(s: Session, client_id: int, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """A client's log and the creations of its tickets, one list newest first (the same moment: a change
    before a creation, as a change of a ticket comes after its creation)."""
    logged = select(ObjectChange.time.label("at"), literal(1).label("rank"), ObjectChange.id.label("id")).where(
        ObjectChange.client_id == client_id
    )
    opened = select(Ticket.opened_at, literal(0), Ticket.id).where(
        Ticket.client_id == client_id, Ticket.opened_by.is_not(None)
    )
    both = union_all(logged, opened).subquery()
    total = s.scalar(select(func.count()).select_from(both)) or 0
    page = s.execute(
        select(both.c.rank, both.c.id)
        .order_by(both.c.at.desc(), both.c.rank.desc(), both.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    change_ids = [i for rank, i in page if rank == 1]
    ticket_ids = [i for rank, i in page if rank == 0]
    changes = {c.id: change_json(c) for c in s.scalars(select(ObjectChange).where(ObjectChange.id.in_(change_ids)))}
    tickets = list(s.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))) if ticket_ids else []
    creations = _opened_json(s, tickets)
    return total, [changes[i] if rank == 1 else creations[i] for rank, i in page]


def history(db: Database, name: str, key: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """The change log of one object; for a client, of the client and everything it holds."""
    with db.reader() as s:
        table, object_id = _object_id(s, name, key)
        if name == "client":
            total, changes = _client_page(s, object_id, limit, offset)
        elif name == "ticket":
            total, changes = _ticket_page(s, object_id, limit, offset)
        else:
            total, changes = _object_page(s, table, object_id, limit, offset)
    following = offset + len(changes)
    return {
        "object": name,
        "key": key,
        "changes": changes,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": following if following < total else None,
    }

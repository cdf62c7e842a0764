"""What happened to an object: its change log (who, when, before → after), newest first.

Objects are named as a person names them: a client, agreement, device… by key; a contact or a time entry
by its id; an invoice by its number; a ticket by its number.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
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
    if column is model.id and not key.isdigit():
        raise ValidationFailed([f"key: a {name} is named by its number, not {key!r}"])
    found = s.scalar(select(model.id).where(column == (int(key) if column is model.id else key)))
    if found is None:
        # a deleted object is found by its last label in the log
        found = s.scalar(
            select(ObjectChange.object_id)
            .where(ObjectChange.object_type == table, ObjectChange.object_label == key)
            .order_by(ObjectChange.id.desc())
            .limit(1)
        )
    if found is None:
        raise NotFound(f"no {name} {key!r}")
    return table, int(found)


def history(db: Database, name: str, key: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """The change log of one object; for a client, of the client and everything it holds."""
    with db.reader() as s:
        table, object_id = _object_id(s, name, key)
        where = (
            ObjectChange.client_id == object_id
            if name == "client"
            else (ObjectChange.object_type == table) & (ObjectChange.object_id == object_id)
        )
        total = s.scalar(select(func.count()).select_from(ObjectChange).where(where)) or 0
        rows = s.scalars(select(ObjectChange).where(where).order_by(ObjectChange.id.desc()).limit(limit).offset(offset))
        changes = [change_json(c) for c in rows]
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

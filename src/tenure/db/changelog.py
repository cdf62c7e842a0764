"""The change log: one row per create, update or delete of a business object (NetBox's ObjectChange).

Written in the same transaction as the change, in one bulk insert per flush, so a change and its log row
are committed or lost together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ForeignKey, Index, String, event, insert, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column

from tenure import clock
from tenure.db.base import Base, ChangeLogged, plain
from tenure.db.bulkwrite import insert_rows
from tenure.db.engine import JsonText
from tenure.db.types import UTCDateTime
from tenure.db.uow import current_actor


class ObjectChange(Base):
    __tablename__ = "object_change"
    __table_args__ = (Index("ix_object_change_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(10))  # create | update | delete | reveal
    object_type: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[int | None]
    object_label: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id", ondelete="SET NULL"), index=True)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]


def _before_state(obj: ChangeLogged) -> dict[str, Any]:
    state = inspect(obj)
    before: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in obj.__changelog_exclude__:
            continue
        history = state.attrs[attr.key].history
        value = history.deleted[0] if history.deleted else getattr(obj, attr.key)
        before[attr.key] = "<redacted>" if attr.key in obj.__changelog_redact__ and value else plain(value)
    return before


def _row(obj: ChangeLogged, action: str, before: Any, after: Any) -> dict[str, Any]:
    client_id = getattr(obj, "client_id", None)
    if type(obj).__tablename__ == "client":  # type: ignore[attr-defined]
        client_id = getattr(obj, "id", None)
    return {
        "time": clock.now(),
        "actor": current_actor(),
        "action": action,
        "object_type": type(obj).__tablename__,  # type: ignore[attr-defined]
        "object_id": getattr(obj, "id", None),
        "object_label": obj.changelog_label()[:200],
        "client_id": None if action == "delete" and type(obj).__tablename__ == "client" else client_id,  # type: ignore[attr-defined]
        "before": before,
        "after": after,
    }


@event.listens_for(Session, "before_flush")
def _every_table_known(session: Session, flush_context: Any, instances: Any) -> None:
    """A flush resolves every foreign key of the rows it writes to its table, whichever feature that table
    belongs to. `Database.unit_of_work` imports the whole model before it starts; this covers any other
    session that writes (a read imports only the tables it queries)."""
    import tenure.models  # noqa: F401


@event.listens_for(Session, "after_flush")
def _log_changes(session: Session, flush_context: Any) -> None:
    rows: list[dict[str, Any]] = []
    for obj in session.new:
        if isinstance(obj, ChangeLogged) and obj.__changelog_creates__:
            rows.append(_row(obj, "create", None, obj.changelog_state()))
    for obj in session.dirty:
        if isinstance(obj, ChangeLogged) and session.is_modified(obj, include_collections=False):
            before, after = _before_state(obj), obj.changelog_state()
            changed = {k for k in after if before.get(k) != after[k]}
            if changed:  # full states, as NetBox keeps them; a reader diffs them
                rows.append(_row(obj, "update", before, after))
    for obj in session.deleted:
        if isinstance(obj, ChangeLogged):
            rows.append(_row(obj, "delete", obj.changelog_state(), None))
    # a client purged in this flush takes what it owns with it (its contacts, sites, devices): their rows are
    # logged too, without the client they can no longer point to
    purged = {row["object_id"] for row in rows if row["object_type"] == "client" and row["action"] == "delete"}
    if purged:
        for row in rows:
            if row["client_id"] in purged:
                row["client_id"] = None
    if rows:
        session.connection().execute(insert(ObjectChange), rows)


def record(session: Session, action: str, obj: ChangeLogged, note: dict[str, Any]) -> None:
    """Log an event that is not a column change (a secret revealed, say) with who did it."""
    session.connection().execute(insert(ObjectChange), [_row(obj, action, None, note)])


def _plain_default(value: Any) -> Any:
    """What orjson cannot write itself (money, bytes), as `plain` writes it; orjson writes dates and times as
    `isoformat` does. A value `plain` leaves as it is, orjson cannot write either."""
    shown = plain(value)
    if shown is value:
        raise TypeError(type(value).__name__)
    return shown


def _created_state(after: dict[str, Any]) -> Any:
    """A created object's state, as JSON text written by orjson in one call: bulk paths log thousands (a storm
    batch's new tickets, under intake's recording lock), where `plain` ran once for every column of each. What
    orjson refuses (an integer beyond 64 bits) is made plain value by value, as before."""
    try:
        return JsonText(orjson.dumps(after, default=_plain_default, option=orjson.OPT_NON_STR_KEYS).decode())
    except TypeError:  # orjson.JSONEncodeError is one
        return {k: plain(v) for k, v in after.items()}


def logged_state(model: type[ChangeLogged], values: dict[str, Any]) -> dict[str, Any]:
    """The state `changelog_state` logs for an object of `model` whose columns hold `values` (a bulk path reads
    plain rows, not objects), for `record_updated` and `record_created` to write. The values are left as they
    are: orjson writes times and dates as `plain` does, and `plain` makes what it cannot (`_created_state`), so
    the logged JSON is the same, without a conversion per column of each of a storm's thousands of rows."""
    redact, exclude = model.__changelog_redact__, model.__changelog_exclude__
    return {
        key: "<redacted>" if key in redact and value else value for key, value in values.items() if key not in exclude
    }


def record_updated(session: Session, object_type: str, rows: list[dict[str, Any]]) -> None:
    """Log rows a bulk update changed (bulk paths bypass the flush hook): each dict holds `id`, `label`,
    `client_id` and the `before` and `after` states (`logged_state`)."""
    _record_bulk(session, "update", object_type, rows)


def record_created(session: Session, object_type: str, rows: list[dict[str, Any]]) -> None:
    """Log rows a bulk insert created (bulk paths bypass the flush hook): each dict holds `id`, `label`,
    `client_id` and `after`, the created state."""
    _record_bulk(session, "create", object_type, rows)


def _record_bulk(session: Session, action: str, object_type: str, rows: list[dict[str, Any]]) -> None:
    """The change-log rows of a bulk path, in one insert; a row without `before` logs none (a creation)."""
    if rows:
        now, actor = clock.now(), current_actor()
        insert_rows(
            session.connection(),
            ObjectChange.__table__,
            [
                {
                    "time": now,
                    "actor": actor,
                    "action": action,
                    "object_type": object_type,
                    "object_id": r["id"],
                    "object_label": r["label"][:200],
                    "client_id": r["client_id"],
                    "before": _created_state(r["before"]) if r.get("before") is not None else None,
                    "after": _created_state(r["after"]),
                }
                for r in rows
            ],
        )

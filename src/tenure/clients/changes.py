"""A client changed in place: signed (created from its book shape), edited, archived or purged.

A new client is a one-client book imported (`book.service.import_book`), so it may arrive with its
contacts, sites, agreements and devices, validated exactly as a book would be. An edit changes only the
client's own fields (its objects change through `book/objects.py`). A client with any history is
archived, never deleted; only one with none (created by mistake a minute ago) is purged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure import clock
from tenure.book import schema
from tenure.book.objects import client_row, has_history, sent_version, validated, version_of
from tenure.book.shapes import client_values, client_view
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.db.locks import hold
from tenure.errors import Conflict, Stale, ValidationFailed

# a client's own fields, as the book writes them; its objects have routes of their own
OWN_FIELDS = ("key", "name", "domains", "billable_alerts", "forward_alerts", "low_balance_hours", "notes")


def shape_of(client: Client) -> dict[str, Any]:
    shape = schema.Client.model_validate(client_view(client)).model_dump(mode="json", exclude_none=True)
    return {name: value for name, value in shape.items() if name in OWN_FIELDS}


def client_json(client: Client) -> dict[str, Any]:
    shape = shape_of(client)
    archived = client.archived_at.isoformat() if client.archived_at else None
    return {**shape, "archived_at": archived, "version": version_of(shape)}


def get_client(db: Database, key: str) -> dict[str, Any]:
    with db.reader() as s:
        return client_json(client_row(s, key))


def add_client(db: Database, body: Any) -> dict[str, Any]:
    """A new client from its book shape, with whatever objects it already has."""
    from tenure.book.service import import_client

    item = validated(schema.Client, body)
    with db.reader() as s:
        holder = s.scalar(select(Client.id).where(Client.key == item.key))
    if holder is not None:
        raise ValidationFailed([f"key: client {item.key!r} exists already (change it with PATCH or `client edit`)"])
    import_client(db, body)
    return get_client(db, item.key)


def edit_client(db: Database, key: str, body: Any, if_match: str | None = None) -> dict[str, Any]:
    """Change only the client's own fields that are sent (`null` clears an optional one)."""
    if not isinstance(body, dict):
        raise ValidationFailed(["(body): an object of fields is expected"])
    body = dict(body)
    if_match = sent_version(body, if_match)
    others = [name for name in body if name not in OWN_FIELDS and name in schema.Client.model_fields]
    if others:
        raise ValidationFailed(
            [f"{name}: change a client's {name} through its own route (/clients/{key}/{name})" for name in others]
        )
    with db.unit_of_work() as s:
        client = _locked(s, key)
        current = shape_of(client)
        if if_match is not None and if_match != version_of(current):
            raise Stale(f"client {key!r} was changed since it was read: read it again and reapply the change")
        if body.get("key", key) != key:
            raise ValidationFailed(["key: a client's key cannot be changed (it names the client everywhere)"])
        item = validated(schema.Client, {k: v for k, v in {**current, **body}.items() if v is not None})
        for name, value in client_values(item).items():
            if getattr(client, name) != value:
                setattr(client, name, value)
        s.flush()
        return client_json(client)


def archive_client(db: Database, key: str, purge: bool = False) -> dict[str, Any]:
    """Archive a client (kept with its history, out of lists); `purge` deletes one that has no history."""
    with db.unit_of_work() as s:
        client = _locked(s, key)
        if purge:
            if has_history(s, client.id):
                raise Conflict(
                    f"client {key!r} has history (agreements, time, invoices, alerts or tickets): "
                    "it is archived, never deleted"
                )
            s.delete(client)
            return {"client": key, "outcome": "deleted"}
        if client.archived_at is None:
            client.archived_at = clock.now()
        s.flush()
        return {"client": key, "outcome": "archived", **client_json(client)}


def restore_client(db: Database, key: str) -> dict[str, Any]:
    """An archived client back in the lists."""
    with db.unit_of_work() as s:
        client = _locked(s, key)
        client.archived_at = None
        s.flush()
        return client_json(client)


def _locked(s: Session, key: str) -> Client:
    client = client_row(s, key)
    hold(s, "change:client", client.id, f"client {key!r}")
    return client

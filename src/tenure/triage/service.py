"""What triage produced, for people: alerts with their decisions, and tickets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tenure.clients.models import Client, Device
from tenure.db.engine import Database
from tenure.intake.models import Alert
from tenure.triage.models import Ticket

DECISIONS = ("ticket", "quote", "forward", "suppress", "orphaned", "pending")
TICKET_STATUSES = ("open", "awaiting_approval", "closed", "handed_over")


def alert_json(a: Any, key: str | None, host: str | None) -> dict[str, Any]:
    """An alert as the CLI, the API and the pages show it."""
    return {
        "alert": a.id,
        "client": key,
        "device": host,
        "fingerprint": a.fingerprint,
        "decision": a.decision,
        "ticket": a.ticket_id,
        "reason": a.reason,
        "status": a.status,
        "service": a.service,
        "title": a.title,
        "count": a.count,
        "first_seen": a.first_seen.isoformat(),
        "last_seen": a.last_seen.isoformat(),
    }


def list_alerts(
    db: Database, client: str | None = None, decision: str | None = None, status: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    with db.reader() as s:
        query = (
            select(Alert, Client.key, Device.hostname)
            .join(Client, Client.id == Alert.client_id)
            .outerjoin(Device, Device.id == Alert.device_id)
            .order_by(Alert.last_seen.desc())
            .limit(limit)
        )
        if client:
            query = query.where(Client.key == client)
        if decision:
            query = query.where(Alert.decision == decision)
        if status:
            query = query.where(Alert.status == status)
        return [alert_json(a, key, host) for a, key, host in s.execute(query)]


def list_tickets(
    db: Database, client: str | None = None, status: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    with db.reader() as s:
        query = (
            select(Ticket, Client.key)
            .join(Client, Client.id == Ticket.client_id)
            .order_by(Ticket.opened_at.desc())
            .limit(limit)
        )
        if client:
            query = query.where(Client.key == client)
        if status:
            query = query.where(Ticket.status == status)
        return [
            {
                "ticket": t.id,
                "client": key,
                "kind": t.kind,
                "status": t.status,
                "title": t.title,
                "billable": t.billable,
                "alerts": t.alert_count,
                "opened_at": t.opened_at.isoformat(),
                "closed_at": t.closed_at.isoformat() if t.closed_at else None,
            }
            for t, key in s.execute(query)
        ]

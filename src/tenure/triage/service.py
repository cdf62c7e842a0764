"""What triage produced, for people: alerts with their decisions, and tickets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tenure import vocabulary
from tenure.clients.models import Client, Device
from tenure.db.engine import Database
from tenure.errors import check_choices
from tenure.intake.models import Alert
from tenure.intake.sources import ALERT_STATUSES

DECISIONS = ("ticket", "quote", "forward", "suppress", "orphaned", "pending")
TICKET_STATUSES = (*vocabulary.TICKET_STATUSES, "open", "active", "all")  # a status, or a group (desk.service)


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
    db: Database,
    client: str | None = None,
    decision: str | None = None,
    status: str | None = None,
    limit: int | None = 500,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Alerts, last seen first (then newest first, so pages with `offset` neither skip nor repeat a row);
    `limit` None: all of them. A decision or status no alert can have is refused, not answered with nothing."""
    check_choices(("decision", decision, DECISIONS), ("status", status, ALERT_STATUSES))
    with db.reader() as s:
        query = (
            select(Alert, Client.key, Device.hostname)
            .join(Client, Client.id == Alert.client_id)
            .outerjoin(Device, Device.id == Alert.device_id)
            .order_by(Alert.last_seen.desc(), Alert.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if client:
            query = query.where(Client.key == client)
        if decision:
            query = query.where(Alert.decision == decision)
        if status:
            query = query.where(Alert.status == status)
        return [alert_json(a, key, host) for a, key, host in s.execute(query)]


def list_tickets(
    db: Database,
    client: str | None = None,
    status: str | None = None,
    limit: int | None = 500,
    offset: int = 0,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Tickets, newest first (desk.service.tickets_page: `filters` are assignee, priority, kind, breached);
    `limit` None: all of them."""
    from tenure.desk.service import tickets_page

    if limit is None:
        rows: list[dict[str, Any]] = []
        while True:
            chunk = tickets_page(db, client, status, False, 1000, offset + len(rows), **filters).items
            rows += chunk
            if len(chunk) < 1000:
                return rows
    return list(tickets_page(db, client, status, False, limit, offset, **filters).items)

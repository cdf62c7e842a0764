"""Working the triage queue: a ticket is closed, reopened, or (a quote) approved by the client.

Small use cases shared by the pages and the API (they belong with triage's services; they live here
until triage grows them). Each runs in one unit of work; the ticket is change-logged with who did it.

    open ──close──▶ closed ──reopen──▶ open
    awaiting_approval ──approve──▶ open        (the client approved the quote: work may start)
    awaiting_approval ──close──▶ closed        (declined, or no longer needed)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tenure import clock
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError
from tenure.triage.models import Ticket
from tenure.web.queries import ticket_json

ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "close": (frozenset({"open", "awaiting_approval"}), "closed"),
    "reopen": (frozenset({"closed"}), "open"),
    "approve": (frozenset({"awaiting_approval"}), "open"),
}


def change_ticket(db: Database, ticket_id: int, action: str) -> dict[str, Any]:
    if action not in ACTIONS:
        raise TenureError(f"{action!r} is not one of {', '.join(ACTIONS)}")
    allowed, target = ACTIONS[action]
    with db.unit_of_work() as s:
        found = s.execute(
            select(Ticket, Client.key).join(Client, Client.id == Ticket.client_id).where(Ticket.id == ticket_id)
        ).first()
        if found is None:
            raise NotFound(f"no ticket #{ticket_id}")
        ticket, key = found
        if ticket.status not in allowed:
            done = {"close": "closed", "reopen": "reopened", "approve": "approved"}[action]
            raise TenureError(
                f"ticket #{ticket_id} is {ticket.status}: only a {' or '.join(sorted(allowed))} ticket can be {done}"
            )
        ticket.status = target
        ticket.closed_at = clock.now() if target == "closed" else None
        s.flush()
        return ticket_json(ticket, key)

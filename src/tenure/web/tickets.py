"""Working the triage queue: a ticket is closed, reopened, or (a quote) approved by the client, or moved to
another status (`/tickets/{n}/in_progress`, ...). The pages and the API call this; the work is the service
desk's (`desk.service`), each in one unit of work, change-logged with who did it.
"""

from __future__ import annotations

from typing import Any

from tenure.db.engine import Database
from tenure.desk import service as desk
from tenure.errors import TenureError
from tenure.vocabulary import TICKET_STATUSES

ACTIONS = ("close", "reopen", "approve", *(s for s in TICKET_STATUSES if s not in ("new", "closed")))


def change_ticket(db: Database, ticket_id: int, action: str, note: str | None = None) -> dict[str, Any]:
    if action not in ACTIONS:
        raise TenureError(f"{action!r} is not one of {', '.join(ACTIONS)}")
    if action == "close":
        return desk.close_ticket(db, ticket_id, note)
    if action == "reopen":
        return desk.reopen_ticket(db, ticket_id, note)
    if action == "approve":
        return desk.approve_ticket(db, ticket_id, note)
    return desk.change_status(db, ticket_id, action, note)

"""REST API v1: tickets."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from tenure.accounts.users import Principal
from tenure.api.common import (
    MAX_ID,
    NOT_FOUND,
    Api,
    BigLimit,
    ClientKey,
    Offset,
    PageMeta,
    page,
)
from tenure.web import queries
from tenure.web.tickets import change_ticket


class TicketOut(BaseModel):
    ticket: int
    client: str
    kind: str
    status: str
    title: str
    billable: bool
    alerts: int
    opened_at: str
    closed_at: str | None


class TicketPage(PageMeta):
    tickets: list[TicketOut]


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, require, Read = api.db, api.require, api.principal("read")

    @route("GET", "/tickets", "read", tags=["tickets"], response_model=TicketPage, responses=NOT_FOUND)
    def tickets(
        _: Read,
        client: ClientKey = None,
        status: Literal["open", "awaiting_approval", "closed", "handed_over"] | None = None,
        queue: Annotated[bool, Query(description="Only tickets waiting on someone (the triage queue).")] = False,
        limit: BigLimit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Tickets, newest first."""
        return page("tickets", queries.tickets_page(db(), client, status, queue, limit, offset))

    def ticket_change(action: str) -> Callable[..., dict[str, Any]]:
        def work(
            ticket: Annotated[int, Path(ge=1, le=MAX_ID)],
            principal: Annotated[Principal, Depends(require("tickets.work"))],
        ) -> dict[str, Any]:
            return principal.act(change_ticket, db(), ticket, action)

        work.__name__ = f"ticket_{action}"
        return work

    for action, summary in (
        ("close", "Close a ticket"),
        ("reopen", "Reopen a closed ticket"),
        ("approve", "The client approved a quote: work may start"),
    ):
        route(
            "POST",
            f"/tickets/{{ticket}}/{action}",
            "tickets.work",
            tags=["tickets"],
            response_model=TicketOut,
            responses=NOT_FOUND,
            summary=summary,
        )(ticket_change(action))

    return router

"""REST API v1: tickets."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from tenure.accounts.users import Principal
from tenure.api.common import (
    KEY,
    MAX_ID,
    NOT_FOUND,
    TEXT,
    WRITES,
    Api,
    BigLimit,
    ClientKey,
    Offset,
    PageMeta,
    page,
)
from tenure.desk import service as desk
from tenure.vocabulary import TicketKind, TicketPriority, TicketStatus
from tenure.web import queries
from tenure.web.tickets import change_ticket


class TicketOut(BaseModel):
    ticket: int
    client: str | None
    device: str | None = None
    kind: str
    priority: str = "P3"
    status: str
    assignee: str | None = None
    title: str
    billable: bool
    alerts: int
    opened_at: str
    respond_by: str | None = None
    due_at: str | None = None
    closed_at: str | None
    minutes: int = 0
    breached: bool = False
    breach: str | None = None


class NoteOut(BaseModel):
    at: str
    author: str
    public: bool
    text: str


class TicketFull(TicketOut):
    description: str | None = None
    opened_by: str | None = Field(None, description="Who opened it; null on a ticket opened before Tenure kept it.")
    notes: list[NoteOut] = []
    time: list[dict[str, Any]] = []


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: str = Field(min_length=1, max_length=100, pattern=KEY, description="The client's key.")
    title: str = Field(min_length=1, max_length=500, pattern=TEXT)
    kind: TicketKind = "incident"
    priority: TicketPriority = "P3"
    device: str | None = Field(None, min_length=1, max_length=200, pattern=TEXT, description="Key or hostname.")
    description: str | None = Field(None, max_length=20000, pattern=TEXT)
    assignee: str | None = Field(None, min_length=1, max_length=100, pattern=TEXT, description="A username.")
    billable: bool = False


class TicketPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=500, pattern=TEXT)
    description: str | None = Field(None, max_length=20000, pattern=TEXT)
    kind: TicketKind | None = None
    priority: TicketPriority | None = None
    status: TicketStatus | None = Field(None, description="`in_progress` reopens a closed or resolved ticket.")
    device: str | None = Field(None, max_length=200, pattern=TEXT, description="Key or hostname; empty: none.")
    assignee: str | None = Field(None, max_length=100, pattern=TEXT, description="A username; empty: nobody.")
    billable: bool | None = None
    note: str | None = Field(None, max_length=20000, pattern=TEXT, description="An internal note saying why.")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=20000, pattern=TEXT)
    public: bool = Field(False, description="The client sees a public note; an internal one is for staff.")


class TicketPage(PageMeta):
    tickets: list[TicketOut]


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, require, Read = api.db, api.require, api.principal("read")

    @route("GET", "/tickets", "read", tags=["tickets"], response_model=TicketPage, responses=NOT_FOUND)
    def tickets(
        _: Read,
        client: ClientKey = None,
        status: Annotated[
            TicketStatus | Literal["open", "active", "all"] | None,
            Query(description="A status, or `open` (not closed), `active` (waiting on someone), `all`."),
        ] = None,
        queue: Annotated[bool, Query(description="Only tickets waiting on someone (the triage queue).")] = False,
        assignee: Annotated[
            str | None, Query(max_length=100, pattern=TEXT, description="A username; empty: nobody's.")
        ] = None,
        priority: TicketPriority | None = None,
        kind: TicketKind | None = None,
        breached: Annotated[bool, Query(description="Only tickets past a response or resolution target.")] = False,
        limit: BigLimit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Tickets, newest first."""
        found = queries.tickets_page(
            db(), client, status, queue, limit, offset, assignee=assignee, priority=priority, kind=kind,
            breached=breached,
        )  # fmt: skip
        return page("tickets", found)

    Worker = Annotated[Principal, Depends(require("tickets.work"))]
    Number = Annotated[int, Path(ge=1, le=MAX_ID, description="The ticket's number.")]

    @route("POST", "/tickets", "tickets.work", tags=["tickets"], status_code=201, response_model=TicketFull,
           responses=WRITES, summary="Open a ticket by hand (a phone call)")  # fmt: skip
    def open_one(body: TicketIn, principal: Worker) -> dict[str, Any]:
        return principal.act(
            desk.open_ticket, db(), body.client, body.title, kind=body.kind, priority=body.priority,
            device=body.device, description=body.description, assignee=body.assignee, billable=body.billable,
        )  # fmt: skip

    @route("GET", "/tickets/{ticket}", "read", tags=["tickets"], response_model=TicketFull, responses=NOT_FOUND,
           summary="A ticket with its notes and the time logged on it (who paid each entry)")  # fmt: skip
    def one(ticket: Number, _: Read) -> dict[str, Any]:
        return desk.ticket_view(db(), ticket)

    @route("PATCH", "/tickets/{ticket}", "tickets.work", tags=["tickets"], response_model=TicketFull,
           responses=WRITES, summary="Change a ticket: status, assignee, priority, title, ...")  # fmt: skip
    def change(ticket: Number, body: TicketPatch, principal: Worker) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        note = changes.pop("note", None)
        return principal.act(desk.update_ticket, db(), ticket, changes, note)

    @route("POST", "/tickets/{ticket}/notes", "tickets.work", tags=["tickets"], status_code=201,
           response_model=TicketFull, responses=WRITES, summary="Add a note, internal or public")  # fmt: skip
    def note(ticket: Number, body: NoteIn, principal: Worker) -> dict[str, Any]:
        author = principal.username or principal.token_name
        return principal.act(desk.add_note, db(), ticket, body.text, body.public, author)

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
            response_model=TicketFull,
            responses=NOT_FOUND,
            summary=summary,
        )(ticket_change(action))

    return router

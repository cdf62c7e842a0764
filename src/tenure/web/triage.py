"""The triage queue, its tickets' actions (close, reopen, approve a quote) and the alert list."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError
from tenure.web import queries
from tenure.web.common import MAX_ID, PAGE_SIZE, Gate, Who, redirect, safe_next, show
from tenure.web.tickets import change_ticket

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/triage", "read"),
    ("POST", "/tickets/{ticket}/{action}", "tickets.work"),
    ("GET", "/alerts", "read"),
]


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]

    @router.get("/triage", response_class=HTMLResponse)
    def triage(
        request: Request,
        who: Read,
        client: Annotated[str | None, Query(max_length=100)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        try:
            found = queries.tickets_page(db(), client or None, queue=True, limit=PAGE_SIZE, offset=offset)
        except NotFound:
            found = queries.Page([], 0, True, PAGE_SIZE, offset)
        return show(request, who, "triage.html", page=found, client=client or "")

    @router.post("/tickets/{ticket}/{action}")
    def ticket_action(
        request: Request,
        ticket: Annotated[int, Path(ge=1, le=MAX_ID)],
        action: str,
        who: Annotated[Who, Depends(gate.form("tickets.work"))],
        back: Annotated[str, Form(max_length=2000)] = "/triage",
    ) -> Response:
        try:
            done = who[0].act(change_ticket, db(), ticket, action)
        except TenureError as exc:
            return redirect(safe_next(back), str(exc), error=True)
        return redirect(safe_next(back), f"ticket #{done['ticket']} is {done['status']}")

    @router.get("/alerts", response_class=HTMLResponse)
    def alerts(
        request: Request,
        who: Read,
        client: Annotated[str | None, Query(max_length=100)] = None,
        decision: Annotated[str | None, Query(max_length=20)] = None,
        status: Annotated[str | None, Query(max_length=20)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        found = queries.alerts_page(db(), client or None, decision or None, status or None, PAGE_SIZE, offset)
        return show(request, who, "alerts.html", page=found, client=client or "", decision=decision, status=status)

    return router

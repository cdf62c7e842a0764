"""What every page's frame holds beyond the page itself: the search box's answers (`GET /search`, JSON for the
box's script, a page of its own without one) and the counts the navigation shows (what needs attention)."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import func, select

from tenure import clock, search
from tenure.billing.models import Invoice
from tenure.db.engine import Database
from tenure.notices.models import Notice
from tenure.offboarding.models import OffboardingRun
from tenure.triage.models import Ticket
from tenure.web.common import Gate, Who, secure_headers, show

ROUTES: list[tuple[str, str, str | None]] = [("GET", "/search", "read")]

OPEN_TICKETS = search.WAITING


def attention(db: Database) -> dict[str, int]:
    """The counts beside the navigation's links, in one query: the triage queue (tickets waiting on someone),
    invoices issued and past due, offboarding runs waiting on a person, mail that failed for good (the
    outbox's state index)."""
    today = clock.today()
    with db.reader() as s:
        row = s.execute(
            select(
                select(func.count(Ticket.id)).where(Ticket.status.in_(OPEN_TICKETS)).scalar_subquery(),
                select(func.count(Invoice.id))
                .where(Invoice.status == "issued", Invoice.due_date < today)
                .scalar_subquery(),
                select(func.count(OffboardingRun.id)).where(OffboardingRun.state == "waiting").scalar_subquery(),
                select(func.count(Notice.id)).where(Notice.state == "failed").scalar_subquery(),
            )
        ).one()
    return {
        "triage": int(row[0] or 0),
        "overdue": int(row[1] or 0),
        "waiting": int(row[2] or 0),
        "mail_failed": int(row[3] or 0),
    }


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]

    @router.get("/search", response_model=None)
    def find(
        request: Request, who: Read, q: Annotated[str, Query(max_length=search.MAX_QUERY)] = ""
    ) -> Response:
        hits: list[dict[str, Any]] = search.find(db(), q)
        if wants_json(request):
            response = JSONResponse({"query": q, "hits": hits})
            secure_headers(response)
            return response
        page: HTMLResponse = show(request, who, "search.html", query=q, hits=hits)
        return page

    return router

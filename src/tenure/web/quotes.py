"""A quote on a ticket's page: price and description, mailed to the client's primary contact with signed
Approve / Decline links (desk/mail/quotes.py, as `tenure ticket quote` and the API do).

Registered before triage.py (web/routes.py) so that `/tickets/{n}/quote` is not taken for an action.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from tenure.db.engine import Database
from tenure.desk.mail.quotes import write_quote
from tenure.errors import TenureError
from tenure.notices.render import money
from tenure.web import forms
from tenure.web.common import MAX_ID, Gate, Who, redirect
from tenure.web.desk import refused_on_ticket

ROUTES: list[tuple[str, str, str | None]] = [("POST", "/tickets/{ticket}/quote", "tickets.work")]


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Worker = Annotated[Who, Depends(gate.form("tickets.work"))]

    @router.post("/tickets/{ticket}/quote", response_class=HTMLResponse)
    def quote(request: Request, ticket: Annotated[int, Path(ge=1, le=MAX_ID)], who: Worker) -> Response:
        values = forms.typed(forms.QUOTE, request.state.form)
        try:
            done = who[0].act(write_quote, db(), ticket, values["amount"].strip(), values["description"],
                              who[0].username)  # fmt: skip
        except TenureError as exc:
            return refused_on_ticket(db, request, who, ticket, "ticket-quote", forms.QUOTE, exc, values)
        to = ", ".join(done["to"]) or "nobody (no contact with an address: kept on record)"
        return redirect(f"/tickets/{ticket}", f"quote of {money(done['amount'])} on its way to {to}")

    return router

"""The service desk's pages: the ticket queue with its filters ("my tickets" among them), a ticket's own page, and
its forms: open a ticket (a phone call), add a note, assign, change priority, log time on it. Status buttons
post to `/tickets/{n}/{action}` (web/triage.py). The same `desk.service` functions as the CLI and the API.

Registered before triage.py (web/routes.py) so that `/tickets/{n}/notes` is not taken for an action.
"""

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure import clock
from tenure.agreements.service import log_time
from tenure.db.engine import Database
from tenure.desk import service as desk
from tenure.errors import NotFound, TenureError, ValidationFailed
from tenure.vocabulary import ACTIVE_TICKET_STATUSES, SERVICES, TICKET_KINDS, TICKET_PRIORITIES, TICKET_STATUSES
from tenure.web import forms, queries
from tenure.web.common import MAX_ID, PAGE_SIZE, Gate, Who, paid_words, redirect, show
from tenure.web.forms import FormState
from tenure.web.time import logged_fields, typed_again

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/tickets", "read"),
    ("POST", "/tickets", "tickets.work"),
    ("GET", "/tickets/{ticket}", "read"),
    ("POST", "/tickets/{ticket}/notes", "tickets.work"),
    ("POST", "/tickets/{ticket}/assign", "tickets.work"),
    ("POST", "/tickets/{ticket}/edit", "tickets.work"),
    ("POST", "/tickets/{ticket}/time", "time.log"),
]

Number = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str, Query(max_length=100)]
STATUS_CHOICES = ("active", "open", *TICKET_STATUSES, "all")
# the buttons a ticket's page offers in each status: (action, label)
MOVES = {
    "new": (("in_progress", "start"), ("waiting_on_client", "wait on client"), ("resolved", "resolve")),
    "in_progress": (("waiting_on_client", "wait on client"), ("resolved", "resolve")),
    "waiting_on_client": (("in_progress", "back to work"), ("resolved", "resolve")),
    "awaiting_approval": (("approve", "approved by the client"),),
    "resolved": (("reopen", "reopen"),),
    "closed": (("reopen", "reopen"),),
}


def ticket_page(
    db: Callable[[], Database], request: Request, who: Who, ticket: int, refusal: FormState | None = None,
    status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    """The ticket's page; `refusal` a form of it refused, shown again as typed (a note, a quote, time)."""
    view = desk.ticket_view(db(), ticket)  # NotFound: 404
    for entry in view["time"]:
        entry["paid"] = paid_words(entry["paid_by"])
    states = {
        "ticket-note": FormState("ticket-note"),
        "ticket-quote": FormState("ticket-quote"),
        "ticket-time": FormState("ticket-time", {"minutes": "30", "work_type": "remote_support",
                                                 "day": str(clock.today())}),
    }  # fmt: skip
    if refusal is not None:
        states[refusal.name] = refusal
    return show(
        request, who, "ticket.html", status_code, t=view, moves=MOVES.get(view["status"], ()), kinds=TICKET_KINDS,
        priorities=TICKET_PRIORITIES, services=SERVICES, active=ACTIVE_TICKET_STATUSES, forms=states,
        specs={"note": forms.TICKET_NOTE, "quote": forms.QUOTE, "time": forms.TICKET_TIME},
    )  # fmt: skip


def refused_on_ticket(
    db: Callable[[], Database], request: Request, who: Who, ticket: int, name: str, spec: Sequence[forms.Field],
    exc: TenureError, values: dict[str, Any],
) -> Response:  # fmt: skip
    """A form of the ticket's page refused: the page again (422), the form as typed, the problem beside its field."""
    if isinstance(exc, NotFound) and f"#{ticket}" in str(exc):
        raise exc  # the ticket itself is gone: a 404, not a form to correct
    return ticket_page(db, request, who, ticket, typed_again(name, spec, exc, values), 422)


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]
    Worker = Annotated[Who, Depends(gate.form("tickets.work"))]

    @router.get("/tickets", response_class=HTMLResponse)
    def queue(
        request: Request,
        who: Read,
        status: Annotated[str, Query(max_length=20)] = "active",
        client: Text = "",
        assignee: Text = "",
        priority: Annotated[str, Query(max_length=2)] = "",
        breached: bool = False,
        mine: bool = False,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        return queue_page(request, who, status, client, assignee, priority, breached, mine, offset)

    def queue_page(
        request: Request, who: Who, status: str = "active", client: str = "", assignee: str = "", priority: str = "",
        breached: bool = False, mine: bool = False, offset: int = 0, opening: FormState | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:  # fmt: skip
        me = who[0].username or ""
        who_filter = me if mine else (assignee or None)
        if who_filter == "-":
            who_filter = ""  # nobody's
        problem = None
        try:
            found = queries.tickets_page(
                db(), client or None, status if status in STATUS_CHOICES else "active", False, PAGE_SIZE, offset,
                assignee=who_filter, priority=priority or None, breached=breached,
            )  # fmt: skip
        except TenureError as exc:
            problem, found = str(exc), queries.Page([], 0, True, PAGE_SIZE, offset)
        opening = opening or FormState("ticket-new", {"kind": "incident", "priority": "P3"})
        return show(
            request, who, "tickets.html", status_code, page=found, status=status, client=client, assignee=assignee,
            priority=priority, breached=breached, mine=mine, problem=problem, statuses=STATUS_CHOICES,
            priorities=TICKET_PRIORITIES, kinds=TICKET_KINDS, opening=opening, new_spec=forms.TICKET_NEW,
        )  # fmt: skip

    @router.post("/tickets", response_class=HTMLResponse)
    def open_one(request: Request, who: Worker) -> Response:
        values = forms.typed(forms.TICKET_NEW, request.state.form)
        try:
            missing = forms.missing(forms.TICKET_NEW, values)
            if missing:
                raise ValidationFailed(missing)
            ticket = who[0].act(
                desk.open_ticket, db(), values["client"].strip(), values["title"][:500], kind=values["kind"],
                priority=values["priority"], device=values["device"].strip()[:200] or None,
                description=values["description"].strip() or None,
                assignee=who[0].username if values["assign_me"] else None,
            )  # fmt: skip
        except TenureError as exc:
            state = typed_again("ticket-new", forms.TICKET_NEW, exc, values)
            return queue_page(request, who, opening=state, status_code=422)
        return redirect(f"/tickets/{ticket['ticket']}", f"ticket #{ticket['ticket']} opened")

    @router.get("/tickets/{ticket}", response_class=HTMLResponse)
    def one(request: Request, ticket: Number, who: Read) -> HTMLResponse:
        return ticket_page(db, request, who, ticket)

    @router.post("/tickets/{ticket}/notes", response_class=HTMLResponse)
    def note(request: Request, ticket: Number, who: Worker) -> Response:
        values = forms.typed(forms.TICKET_NOTE, request.state.form)
        try:
            if not values["text"].strip():
                raise ValidationFailed(["text: a note needs some text"])
            who[0].act(desk.add_note, db(), ticket, values["text"], values["public"], who[0].username)
        except TenureError as exc:
            return refused_on_ticket(db, request, who, ticket, "ticket-note", forms.TICKET_NOTE, exc, values)
        return redirect(f"/tickets/{ticket}#notes", f"{'public' if values['public'] else 'internal'} note added")

    @router.post("/tickets/{ticket}/assign")
    def assign(ticket: Number, who: Worker, assignee: Annotated[str, Form(max_length=100)] = "") -> Response:
        try:
            done = who[0].act(desk.assign_ticket, db(), ticket, assignee.strip() or None)
        except TenureError as exc:
            return redirect(f"/tickets/{ticket}", str(exc), error=True)
        return redirect(f"/tickets/{ticket}", f"ticket #{ticket} is {done['assignee'] or 'unassigned'}")

    @router.post("/tickets/{ticket}/edit")
    def edit(
        ticket: Number,
        who: Worker,
        priority: Annotated[str, Form(max_length=2)],
        kind: Annotated[str, Form(max_length=20)],
        title: Annotated[str, Form(max_length=500)],
    ) -> Response:
        try:
            who[0].act(desk.update_ticket, db(), ticket, {"priority": priority, "kind": kind, "title": title})
        except TenureError as exc:
            return redirect(f"/tickets/{ticket}", str(exc), error=True)
        return redirect(f"/tickets/{ticket}", f"ticket #{ticket} changed")

    @router.post("/tickets/{ticket}/time", response_class=HTMLResponse)
    def log(request: Request, ticket: Number, who: Annotated[Who, Depends(gate.form("time.log"))]) -> Response:
        values = forms.typed(forms.TICKET_TIME, request.state.form)
        back = f"/tickets/{ticket}"
        try:
            minutes, day, _ = logged_fields(values)
            client = desk.ticket_view(db(), ticket)["client"]
            logged = who[0].act(
                log_time, db(), client, minutes, values["work_type"], day, who[0].username,
                values["note"].strip() or None, ticket,
            )  # fmt: skip
        except TenureError as exc:
            return refused_on_ticket(db, request, who, ticket, "ticket-time", forms.TICKET_TIME, exc, values)
        return redirect(
            f"{back}#time", f"logged {logged.minutes} min of {logged.work_type}: {paid_words(logged.portions)}"
        )

    return router

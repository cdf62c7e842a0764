"""The service desk's pages: the ticket queue with its filters ("my tickets" among them), a ticket's own page, and
its forms: open a ticket (a phone call), add a note, assign, change priority, log time on it. Status buttons
post to `/tickets/{n}/{action}` (web/triage.py). The same `desk.service` functions as the CLI and the API.

Registered before triage.py (web/routes.py) so that `/tickets/{n}/notes` is not taken for an action.
"""

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure.agreements.service import log_time
from tenure.db.engine import Database
from tenure.desk import service as desk
from tenure.errors import TenureError
from tenure.vocabulary import ACTIVE_TICKET_STATUSES, SERVICES, TICKET_KINDS, TICKET_PRIORITIES, TICKET_STATUSES
from tenure.web import queries
from tenure.web.common import MAX_ID, PAGE_SIZE, Gate, Who, paid_words, redirect, show, today_minus

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
        return show(
            request, who, "tickets.html", page=found, status=status, client=client, assignee=assignee,
            priority=priority, breached=breached, mine=mine, problem=problem, statuses=STATUS_CHOICES,
            priorities=TICKET_PRIORITIES, kinds=TICKET_KINDS,
        )  # fmt: skip

    @router.post("/tickets")
    def open_one(
        who: Worker,
        client: Annotated[str, Form(max_length=100)],
        title: Annotated[str, Form(max_length=500)],
        kind: Annotated[str, Form(max_length=20)] = "incident",
        priority: Annotated[str, Form(max_length=2)] = "P3",
        device: Annotated[str, Form(max_length=200)] = "",
        description: Annotated[str, Form(max_length=20000)] = "",
        assign_me: Annotated[bool, Form()] = False,
    ) -> Response:
        try:
            ticket = who[0].act(
                desk.open_ticket, db(), client.strip(), title, kind=kind, priority=priority,
                device=device.strip() or None, description=description.strip() or None,
                assignee=who[0].username if assign_me else None,
            )  # fmt: skip
        except TenureError as exc:
            return redirect("/tickets", str(exc), error=True)
        return redirect(f"/tickets/{ticket['ticket']}", f"ticket #{ticket['ticket']} opened")

    @router.get("/tickets/{ticket}", response_class=HTMLResponse)
    def one(request: Request, ticket: Number, who: Read) -> HTMLResponse:
        view = desk.ticket_view(db(), ticket)
        for entry in view["time"]:
            entry["paid"] = paid_words(entry["paid_by"])
        return show(
            request, who, "ticket.html", t=view, moves=MOVES.get(view["status"], ()), kinds=TICKET_KINDS,
            priorities=TICKET_PRIORITIES, services=SERVICES, active=ACTIVE_TICKET_STATUSES,
        )  # fmt: skip

    @router.post("/tickets/{ticket}/notes")
    def note(
        ticket: Number,
        who: Worker,
        text: Annotated[str, Form(max_length=20000)],
        public: Annotated[bool, Form()] = False,
    ) -> Response:
        try:
            who[0].act(desk.add_note, db(), ticket, text, public, who[0].username)
        except TenureError as exc:
            return redirect(f"/tickets/{ticket}", str(exc), error=True)
        return redirect(f"/tickets/{ticket}#notes", f"{'public' if public else 'internal'} note added")

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

    @router.post("/tickets/{ticket}/time")
    def log(
        ticket: Number,
        who: Annotated[Who, Depends(gate.form("time.log"))],
        minutes: Annotated[int, Form(ge=1, le=1440)],
        work_type: Annotated[str, Form(max_length=30)],
        day: Annotated[date | None, Form()] = None,
        note: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        back = f"/tickets/{ticket}"
        if day is not None and not today_minus(3653) <= day <= today_minus(-366):
            return redirect(back, f"{day} is too far from today", error=True)
        try:
            client = desk.ticket_view(db(), ticket)["client"]
            logged = who[0].act(
                log_time, db(), client, minutes, work_type, day, who[0].username, note.strip() or None, ticket
            )
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        return redirect(
            f"{back}#time", f"logged {logged.minutes} min of {logged.work_type}: {paid_words(logged.portions)}"
        )

    return router

"""Proactive maintenance (/maintenance): the plans and what is due.

What is due is `maintenance.run_due(dry_run=True)` (what the worker would make of it now: a ticket, a
billable ticket, an item of the monthly notice the client approves), the plans are `show_plan` (the default
plan of each agreement kind, or one client's plan, its own tasks replacing the default ones), a task is
changed by `set_task`: the same functions `tenure maintenance due|plan|task set` call. Every staff role reads
the page; who may `maintenance.edit` changes a task: a default one (its agreement kind), or, with a client
chosen, the client's own (which then replaces the default one for that client). A refused change is shown
again (422) with what was typed and the field at fault marked.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError, ValidationFailed
from tenure.intake.schedule import zone_of
from tenure.maintenance import service as maintenance
from tenure.maintenance.service import field_refusal
from tenure.msp import changes as msp_changes
from tenure.vocabulary import AGREEMENT_KINDS, SERVICES
from tenure.web import queries
from tenure.web.clients import refused
from tenure.web.common import PAGE_SIZE, Gate, Who, redirect, show
from tenure.web.forms import Field, FormState, missing, typed

PERMISSION = "maintenance.edit"

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/maintenance", "read"),
    ("POST", "/maintenance/tasks/{task}", PERMISSION),
]

TASK = (
    Field("title", "title", required=True, wide=True),
    Field("schedule", "schedule", required=True, wide=True,
          hint="how often, in the MSP's time zone: RRULE:FREQ=MONTHLY;BYMONTHDAY=1, or a cron line (0 8 * * 1-5)"),
    Field("estimate_minutes", "estimate (minutes)", "number", required=True, hint="prices the monthly notice"),
    Field("service", "service", "select", SERVICES, required=True, hint="the agreement's coverage decides who pays"),
    Field("technician", "technician", hint="who does it (their calendar); blank: the client's usual technician"),
    Field("active", "on: when due, it becomes work", "check"),
)  # fmt: skip

LONGEST = {"title": 300, "schedule": 200, "technician": 100}  # what the task's columns hold

# what a due task becomes, in words (maintenance.rules.treatment's codes)
BECOMES = {
    "ticket": "a ticket (covered by the agreement)",
    "billable_ticket": "a billable ticket (not covered by the agreement)",
    "notice": "an item of the monthly notice: done if the client approves it",
}

def _local(moment: datetime | None, zone: Any) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def _due_rows(report: maintenance.DueReport, zone: Any) -> list[dict[str, Any]]:
    rows = []
    for item in report.items:
        row = item.as_json()
        row["when"] = _local(item.occurrence, zone) if item.occurrence else f"the {report.month} notice"
        row["becomes"] = BECOMES.get(item.action, item.action)
        rows.append(row)
    return rows


def _form_of(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": task["title"],
        "schedule": task["schedule"],
        "estimate_minutes": str(task["estimate_minutes"]),
        "service": task["service"],
        "technician": task["technician"] or "",
        "active": bool(task["active"]),
    }


def maintenance_page(
    db: Callable[[], Database], request: Request, who: Who, client: str | None = None, edit: str | None = None,
    kind: str | None = None, state: FormState | None = None, status: int = 200, offset: int = 0,
) -> HTMLResponse:  # fmt: skip
    """The page, for every client or one; `edit` (with `kind` or the client) the task whose form is open,
    `state` a refused form to show again."""
    problem = None
    pager = None
    due: list[dict[str, Any]] = []
    plan: dict[str, Any] = {}
    own: list[dict[str, Any]] = []
    month = ""
    try:
        zone = zone_of(msp_changes.get_settings(db())["timezone"])
        report, more = maintenance.due_page(db(), client, PAGE_SIZE, offset)
        month = report.month
        due = _due_rows(report, zone)
        pager = queries.Page(due, offset + len(due) + int(more), not more, PAGE_SIZE, offset)
        plan = maintenance.show_plan(db(), client)
        for task in [*plan.get("tasks", []), *(t for ts in plan.get("defaults", {}).values() for t in ts)]:
            task["next_local"] = _local(datetime.fromisoformat(task["next"]) if task["next"] else None, zone)
        own = maintenance.own_plans(db())
    except NotFound as exc:
        problem, status = str(exc), 404
    except TenureError as exc:  # the MSP is not set up yet
        problem = str(exc)
    if state is not None:
        edit, kind = state.item, state.values.get("_kind") or kind
    editing = None
    groups: dict[str, list[dict[str, Any]]] = plan.get("defaults", {})
    tasks = plan.get("tasks", [])
    if edit:
        pool = tasks if client else groups.get(kind or "", [])
        editing = next((t for t in pool if t["key"] == edit), None)
    if state is None and editing is not None and who[0].may(PERMISSION):
        state = FormState("task-edit", _form_of(editing), item=editing["key"])
    if state is not None and editing is None and state.refused:  # no form to show it beside: said on top
        marked = [f"{name}: {text}" for name, texts in state.problems.items() for text in texts]
        problem = "; ".join([state.message or "not saved", *state.general, *marked])
    return show(
        request, who, "maintenance.html", status_code=status, client=client or "", due=due, month=month,
        groups=groups, plan=plan, tasks=tasks, own=own, problem=problem, editing=editing, kind=kind,
        state=state if editing is not None else None, spec=TASK, may_edit=who[0].may(PERMISSION), page=pager,
    )  # fmt: skip


def _changes(data: Any, current: dict[str, Any] | None) -> dict[str, Any]:
    """The form as set_task's arguments; a blank required field or an estimate that is not a number refused
    here, naming the field (set_task would leave a field it is given no value for unchanged)."""
    problems = missing(TASK, data)
    problems += [
        f"{name}: at most {most} characters"
        for name, most in LONGEST.items()
        if len(str(data.get(name) or "").strip()) > most
    ]
    minutes = str(data.get("estimate_minutes") or "").strip()
    estimate = None
    if minutes:
        try:
            estimate = int(minutes)
        except ValueError:
            problems.append(f"estimate_minutes: a whole number of minutes, not {minutes!r}")
    if problems:
        raise ValidationFailed(problems)
    technician = str(data.get("technician") or "").strip() or None
    if technician is None and current is not None and current.get("technician"):
        technician = ""  # the field was emptied: no technician of its own any more
    return {
        "title": str(data.get("title")).strip(),
        "schedule": str(data.get("schedule")).strip(),
        "estimate_minutes": estimate,
        "service": str(data.get("service")).strip(),
        "technician": technician,
        "active": "active" in data,
    }


def _current(db: Database, key: str, client: str | None, kind: str | None) -> dict[str, Any] | None:
    """The task as it stands (None when there is none yet, or the client or kind is unknown)."""
    try:
        shown = maintenance.show_plan(db, client)
    except TenureError:
        return None
    tasks = shown.get("tasks", []) if client else shown.get("defaults", {}).get(kind or "", [])
    return next((t for t in tasks if t["key"] == key), None)


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]
    Editor = Annotated[Who, Depends(gate.form(PERMISSION))]
    KeyQuery = Annotated[str | None, Query(max_length=100)]

    @router.get("/maintenance", response_class=HTMLResponse)
    def page(request: Request, who: Read, client: KeyQuery = None, edit: KeyQuery = None,
             kind: KeyQuery = None, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:  # fmt: skip
        return maintenance_page(db, request, who, (client or "").strip() or None, edit, kind, offset=offset)

    @router.post("/maintenance/tasks/{task}")
    def change_task(request: Request, task: Annotated[str, Path(max_length=100)], who: Editor) -> Response:
        data = request.state.form
        client = str(data.get("client") or "").strip() or None
        kind = None if client else str(data.get("kind") or "").strip() or None
        mine = typed(TASK, data) | {"_kind": kind or ""}
        try:
            if client is None and kind not in AGREEMENT_KINDS:
                raise TenureError("choose a client, or the agreement kind whose default plan this task is in")
            changes = _changes(data, _current(db(), task, client, kind))
            shown = who[0].act(maintenance.set_task, db(), task, client=client, kind=kind, **changes)
        except TenureError as exc:
            exc = field_refusal(exc)
            state = refused("task-edit", TASK, exc, mine, item=task)
            status = 404 if isinstance(exc, NotFound) else 422
            return maintenance_page(db, request, who, client, task, kind, state=state, status=status)
        where = f"?client={quote(client)}" if client else ""
        whose = f"{client}'s" if client else f"the {kind} plan's"
        return redirect(f"/maintenance{where}#plan", f"{whose} task {shown['task']} saved: {shown['schedule']}")

    return router

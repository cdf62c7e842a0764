"""REST API v1: proactive maintenance: the plans and what is due.

Over the functions `tenure maintenance due|plan|task set` call: what is due is `run_due` as a dry run (what
the worker would make of each due task now, making nothing), the plans `show_plan`, a change `set_task`.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from tenure.api.common import KEY, NOT_FOUND, TEXT, WRITES, Api, BigLimit, ClientKey, Offset, PageMeta
from tenure.errors import TenureError, ValidationFailed
from tenure.maintenance import service as maintenance
from tenure.maintenance.service import field_refusal
from tenure.vocabulary import AgreementKind, Service


class DueItemOut(BaseModel):
    client: str
    class_: str = Field(alias="class", description="The client's class.")
    plan: str = Field(description="The agreement kind whose plan it is.")
    task: str
    title: str
    service: str
    action: Literal["ticket", "billable_ticket", "notice"] = Field(
        description="What it becomes: a ticket (covered), a billable ticket, an item of the monthly notice."
    )
    occurrence: str | None = Field(description="When it came due (a ticket); a notice item is of the month.")
    ticket: int | None
    ticket_status: str | None
    new: bool = Field(description="Not made yet: the worker makes it on its next round.")
    notice: int | None
    decision: int | None
    answer: str | None = Field(description="The client's answer to a notice item: approved, deferred, superseded.")
    minutes: int | None
    price: str | None = Field(description="A notice item's price at the agreement's hourly rate.")
    carried_from: str | None = Field(description="The month a deferred or unanswered item comes back from.")


class DuePage(PageMeta):
    as_of: str
    month: str
    dry_run: bool
    tickets_opened: int
    notices_written: int
    due: list[DueItemOut]


class TaskPatch(BaseModel):
    """A task of the default plan of `kind`, or the `client`'s own (name one): only the fields sent change.
    A client's task that does not exist yet starts from the default task of the same key."""

    model_config = ConfigDict(extra="forbid")

    client: str | None = Field(None, min_length=1, max_length=100, pattern=KEY, description="A client's key.")
    kind: AgreementKind | None = Field(None, description="The agreement kind whose default plan it is in.")
    title: str | None = Field(None, min_length=1, max_length=300, pattern=TEXT)
    schedule: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=TEXT,
        description="RRULE:FREQ=MONTHLY;BYMONTHDAY=1 or a cron line, in the MSP's time zone.",
    )
    estimate_minutes: int | None = Field(None, ge=1, le=24 * 60, description="Prices the monthly notice.")
    service: Service | None = Field(None, description="The service it is: the agreement's coverage decides who pays.")
    technician: str | None = Field(None, max_length=100, pattern=TEXT, description="Who does it (their calendar).")
    active: bool | None = Field(None, description="false switches the task off.")


class TaskOut(BaseModel):
    task: str
    client: str | None
    kind: str | None
    created: bool = Field(description="A task made by this call (a client's own, from the default one).")
    title: str
    schedule: str
    estimate_minutes: int
    service: str
    technician: str | None
    active: bool


def _set_task(db: Any, key: str, body: TaskPatch) -> dict[str, Any]:
    if (body.client is None) == (body.kind is None):
        raise ValidationFailed(["client: name one: a client, or the agreement kind (kind) of a default plan"])
    values = body.model_dump(exclude={"client", "kind"}, exclude_unset=True)
    try:
        return maintenance.set_task(db, key, client=body.client, kind=body.kind, **values)
    except TenureError as exc:
        raise field_refusal(exc) from exc


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db = api.db
    Read = api.principal("read")
    Editor = api.principal("maintenance.edit")

    @route("GET", "/maintenance/due", "read", tags=["maintenance"], response_model=DuePage, responses=NOT_FOUND,
           summary="What is due now and what it becomes (`tenure maintenance due --dry-run`)")  # fmt: skip
    def due(_: Read, client: ClientKey = None, limit: BigLimit = 500, offset: Offset = 0) -> dict[str, Any]:
        found, more = maintenance.due_page(db(), client, limit, offset)
        report = found.as_json()
        shown = report.pop("due")
        return report | {
            "due": shown,
            "total": offset + len(shown) + int(more),  # at least; exact once no more follow
            "total_exact": not more,
            "limit": limit,
            "offset": offset,
            "next_offset": offset + len(shown) if more else None,
        }

    @route("GET", "/maintenance/plan", "read", tags=["maintenance"], responses=NOT_FOUND,
           summary="The default plans per agreement kind, or a client's plan (`tenure maintenance plan`)")  # fmt: skip
    def plan(_: Read, client: ClientKey = None) -> dict[str, Any]:
        return maintenance.show_plan(db(), client)

    @route("PATCH", "/maintenance/tasks/{task}", "maintenance.edit", tags=["maintenance"], response_model=TaskOut,
           responses=WRITES, summary="Change a task, or give a client one (`tenure maintenance task set`)")  # fmt: skip
    async def set_task(
        task: Annotated[str, Path(min_length=1, max_length=100, pattern=KEY, description="The task's key.")],
        body: TaskPatch,
        principal: Editor,
    ) -> dict[str, Any]:
        return await run_in_threadpool(principal.act, _set_task, db(), task, body)

    return router

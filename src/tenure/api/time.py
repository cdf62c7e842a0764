"""REST API v1: time entries: previewed (who would pay), logged, listed (and corrected)."""

from datetime import date as Date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tenure.accounts.users import Principal
from tenure.agreements.changes import edit_time_entry, get_time_entry, void_time_entry
from tenure.agreements.preview import logged_warnings, preview_time
from tenure.agreements.service import log_time
from tenure.api.common import (
    KEY,
    MAX_ID,
    NOT_FOUND,
    TEXT,
    WRITES,
    Api,
    ClientKey,
    Count,
    Limit,
    Offset,
    PageMeta,
    invalid,
    page,
    within_reason,
)
from tenure.api.objects import IfMatch, tagged
from tenure.vocabulary import Service
from tenure.web import queries


class TimeEntryOut(BaseModel):
    id: int
    client: str
    key: str
    date: str
    minutes: int
    work_type: str
    technician: str | None
    note: str | None
    ticket: int | None
    on_hold: bool
    voided: bool = False
    voided_at: str | None = None
    void_reason: str | None = None


class TimePage(PageMeta):
    time_entries: list[TimeEntryOut]


class TimeEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: str = Field(min_length=1, max_length=100, pattern=KEY, description="The client's key.")
    minutes: int = Field(ge=1, le=1440, description="Minutes worked (rounded up when paid).")
    work_type: Service
    date: Date | None = Field(None, description="The day of the work (default today).")
    technician: str | None = Field(None, max_length=100, pattern=TEXT, description="Default: the caller.")
    note: str | None = Field(None, max_length=2000, pattern=TEXT)
    ticket: int | None = Field(None, ge=1, le=MAX_ID, description="The client's ticket the work was on.")


CORRECTION = "Any of date, minutes, work_type, technician, note, device, client; and an optional reason."


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, pattern=TEXT, description="Why it is voided.")


class PortionOut(BaseModel):
    layer: str
    minutes: int
    block: str | None
    agreement: str | None
    rate: str | None
    line_kind: str | None
    amount: str


class LoggedOut(BaseModel):
    id: int | None = None
    client: str
    key: str
    date: str
    minutes: int
    rounded_minutes: int
    work_type: str
    on_hold: bool
    paid_by: list[PortionOut]
    ticket: int | None = None
    warnings: list[str] = Field(
        default_factory=list, description="Work nothing covers (billed), a retainer at zero (on hold), in words."
    )


class PreviewOut(BaseModel):
    client: str
    minutes: int
    rounded_minutes: int = Field(description="The minutes as paid: rounded up to the MSP's unit.")
    work_type: str
    date: str
    portions: list[PortionOut] = Field(description="Who would pay: each layer, its minutes and amount.")
    billable: bool = Field(description="Some of it would be billed: nothing covers it.")
    former_client: bool
    warnings: list[str] = Field(description="A former client, work nothing covers, a retainer at zero, in words.")


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, require, Read = api.db, api.require, api.principal("read")

    @route("GET", "/time-entries", "read", tags=["time"], response_model=TimePage, responses=NOT_FOUND)
    def time_entries(
        _: Read,
        client: ClientKey = None,
        date_from: Annotated[Date | None, Query(alias="from", description="From this day on.")] = None,
        date_to: Annotated[Date | None, Query(alias="to", description="Up to this day.")] = None,
        work_type: Service | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
        count: Count = "capped",
    ) -> dict[str, Any]:
        """Time entries, newest first (by date for one client)."""
        found = queries.time_page(db(), client, date_from, date_to, work_type, limit, offset, count == "exact")
        return page("time_entries", found)

    @route(
        "POST",
        "/time-entries",
        "time.log",
        tags=["time"],
        status_code=201,
        response_model=LoggedOut,
        responses=NOT_FOUND,
        summary="Log time: says at once which layer pays it",
    )
    def log(entry: TimeEntryIn, principal: Annotated[Principal, Depends(require("time.log"))]) -> dict[str, Any]:
        if entry.date is not None:
            within_reason(entry.date, "date", "body")
        logged = principal.act(
            log_time,
            db(),
            entry.client,
            entry.minutes,
            entry.work_type,
            entry.date,
            entry.technician or principal.username or principal.token_name,
            entry.note,
            entry.ticket,
        )
        return logged.as_json() | {"warnings": logged_warnings(logged)}

    # the preview's own path: no POST /time-entries/{entry} exists to clash with, and it is declared first anyway
    @route(
        "POST",
        "/time-entries/preview",
        "time.log",
        tags=["time"],
        response_model=PreviewOut,
        responses=NOT_FOUND,
        summary="Who would pay for time before it is logged (the body of POST /time-entries); nothing is saved",
    )
    def preview(entry: TimeEntryIn, _: Annotated[Principal, Depends(require("time.log"))]) -> dict[str, Any]:
        """The portions (layer, minutes, amount) logging this time would make, the minutes rounded, and warnings
        in words: a former client, work nothing covers, a retainer at zero. What the log would refuse, this
        refuses too (422 naming the field; 404 for an unknown client or ticket)."""
        if entry.date is not None:
            within_reason(entry.date, "date", "body")
        client, minutes, work_type, day = entry.client, entry.minutes, entry.work_type, entry.date
        return preview_time(db(), client, minutes, work_type, day, technician=entry.technician, ticket=entry.ticket)

    # ------------------------------------------------------------------------------ corrections

    Worker = api.principal("time.log")
    EntryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The time entry's id.")]

    @route("GET", "/time-entries/{entry}", "read", tags=["time"], responses=NOT_FOUND,
           summary="A time entry, with how it is paid now")  # fmt: skip
    def time_entry(entry: EntryId, _: Read) -> JSONResponse:
        return tagged(get_time_entry(db(), entry))

    @route("PATCH", "/time-entries/{entry}", "time.log", tags=["time"], responses=WRITES,
           summary="Correct a time entry (only the fields sent; `client` moves it; `reason` is kept)")  # fmt: skip
    async def correct(
        entry: EntryId,
        body: Annotated[dict[str, Any], Body(description=CORRECTION)],
        principal: Worker,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        changes = dict(body)
        reason = changes.pop("reason", None)
        if reason is not None and not isinstance(reason, str):
            raise invalid("reason", "body", "a reason is text")
        done = await run_in_threadpool(principal.act, edit_time_entry, db(), entry, changes, None, reason, if_match)
        return tagged(done)

    @route("DELETE", "/time-entries/{entry}", "time.log", tags=["time"], responses=WRITES,
           summary="Void a time entry, with a reason: it stays on record and counts for nothing")  # fmt: skip
    async def void(entry: EntryId, body: VoidIn, principal: Worker) -> dict[str, Any]:
        return await run_in_threadpool(principal.act, void_time_entry, db(), entry, body.reason)

    return router

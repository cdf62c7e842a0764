"""REST API v1: the product's resources under `/api/v1/`, for scripts and other systems.

Every route needs `Authorization: Bearer <token>` and names the permission it needs (accounts/users.py has
the table of roles); `/openapi.json` lists it per operation as `x-permission`. Lists are pages: `limit`,
`offset`, and `total` (exact up to 10,000 unless `count=exact`; see `web/queries.py`), `next_offset` for the
next page. Errors are RFC 9457 problem details (`application/problem+json`); a request that does not
validate gets 422 with `invalid-params`: `[{"name", "in", "reason"}]`, one per field at fault.

Changes (time logged, invoices issued, billing runs, tickets worked) run under the caller's name
(`as_actor`), so the change log says who made them.
"""

from collections.abc import Callable
from datetime import date as Date
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from tenure import clock
from tenure.accounts.users import Principal, token_principal
from tenure.agreements.service import log_time
from tenure.billing.service import change_status, get_invoice, run_billing
from tenure.db.engine import Database
from tenure.triage.report import unpaid_report
from tenure.vocabulary import AgreementKind, ClientClass, Service
from tenure.web import queries
from tenure.web.tickets import change_ticket

KEY = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
NUMBER = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
PERIOD = r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$"  # YYYY-MM, years 1900 to 2999
TEXT = r"^[^\x00]*$"
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL

bearer = HTTPBearer(auto_error=False, description="An API token: `tenure token create NAME --role ROLE [--user USER]`")


# ------------------------------------------------------------------------------------------- shapes


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    invalid_params: list[dict[str, str]] | None = Field(None, alias="invalid-params")


class PageMeta(BaseModel):
    total: int = Field(description="Rows matching the filters (capped at 10,000 unless count=exact).")
    total_exact: bool
    limit: int
    offset: int
    next_offset: int | None


class AgreementTerms(BaseModel):
    key: str
    kind: str
    start: str
    end: str | None
    monthly_fee: str | None
    included_minutes: int | None
    overage_rate: str | None
    hourly_rate: str | None
    block_minutes_per_month: int | None
    covers: list[str]
    excludes: list[str]


class AgreementOut(AgreementTerms):
    client: str


class DeviceOut(BaseModel):
    key: str
    hostname: str
    role: str
    os: str | None = None
    active: bool = True
    last_seen: str | None = None


class ClientSummary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    key: str
    name: str
    klass: str = Field(alias="class", description="The client's class today (DOMAIN.md).")
    agreements: list[AgreementTerms]
    block_balance_minutes: int
    retainer_balance: str
    device_count: int


class ClientOut(ClientSummary):
    devices: list[DeviceOut] = Field(description="The first 100 active devices; see /clients/{key}/devices.")


class ClientPage(PageMeta):
    clients: list[ClientSummary]


class DevicePage(PageMeta):
    devices: list[DeviceOut]


class LedgerEntryOut(BaseModel):
    date: str
    account: str
    kind: str
    block: str | None
    cause: str | None
    note: str | None
    minutes: int | None = None
    balance_minutes: int | None = None
    amount: str | None = None
    balance: str | None = None


class LedgerPage(PageMeta):
    entries: list[LedgerEntryOut]


class AgreementPage(PageMeta):
    agreements: list[AgreementOut]


class BlockOut(BaseModel):
    key: str
    client: str
    purchased: str
    hours: str
    bonus_hours: str
    price: str
    expires: str | None
    expired: bool
    balance_minutes: int


class BlockPage(PageMeta):
    blocks: list[BlockOut]


class TimeEntryOut(BaseModel):
    client: str
    key: str
    date: str
    minutes: int
    work_type: str
    technician: str | None
    note: str | None
    ticket: int | None
    on_hold: bool


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


class PortionOut(BaseModel):
    layer: str
    minutes: int
    block: str | None
    agreement: str | None
    rate: str | None
    line_kind: str | None
    amount: str


class LoggedOut(BaseModel):
    client: str
    key: str
    date: str
    minutes: int
    rounded_minutes: int
    work_type: str
    on_hold: bool
    paid_by: list[PortionOut]


class InvoiceLineOut(BaseModel):
    kind: str
    description: str
    quantity: str
    unit_price: str
    amount: str
    service_from: str | None
    service_to: str | None
    minutes: int | None


class InvoiceOut(BaseModel):
    number: str
    client: str
    kind: str
    date: str
    due_date: str
    status: str
    total: str
    period: str | None
    lines: list[InvoiceLineOut]


class InvoicePage(PageMeta):
    invoices: list[InvoiceOut]


class BillingRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = Field(pattern=PERIOD, description="The invoice month, YYYY-MM.")


class BillingRunOut(BaseModel):
    period: str
    created: int
    already_invoiced: int
    total: str
    invoices: list[str] = Field(description="Numbers of the invoices made by this run.")


class AlertOut(BaseModel):
    alert: int
    client: str | None
    device: str | None
    fingerprint: str
    decision: str
    ticket: int | None
    reason: str
    status: str
    service: str
    title: str
    count: int
    first_seen: str
    last_seen: str


class AlertPage(PageMeta):
    alerts: list[AlertOut]


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


class RunOut(BaseModel):
    run: int
    client: str
    state: str
    end_of_service: str
    reason: str | None
    created_at: str
    completed_at: str | None
    steps: int
    counts: dict[str, int]


class RunPage(PageMeta):
    runs: list[RunOut]


class StepOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    key: str
    phase: int
    title: str
    kind: str
    depends_on: list[str]
    target: dict[str, Any]
    instructions: str | None
    action: str | None
    state: str
    attempts: int
    not_before: str | None
    waiting_on: str | None
    error: str | None
    note: str | None
    done_by: str | None
    done_at: str | None
    result: dict[str, Any]
    attempt_log: list[dict[str, Any]] = []


class RunDetail(RunOut):
    answers: dict[str, Any]
    waiting_on: list[str]
    phases: dict[str, str]
    step_list: list[StepOut]


class StepsOut(BaseModel):
    run: int
    steps: list[StepOut]


class UnpaidClient(BaseModel):
    model_config = ConfigDict(extra="allow")

    client: str
    alerts: int
    suppressed: int
    minutes_avoided: int
    reached_a_person: int
    unpaid_minutes: int
    minutes_written_off: int
    uncovered_services: list[str]
    would_cover: dict[str, Any] | None


class UnpaidReport(BaseModel):
    period: str
    minutes_per_alert: int
    clients: list[UnpaidClient]
    totals: dict[str, int]


class Me(BaseModel):
    user: str | None
    role: str
    via: str
    token: str | None
    permissions: list[str]


# ------------------------------------------------------------------------------------------- helpers

PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid token (missing, unknown or revoked)."},
    403: {"model": Problem, "description": "The token's role may not do this."},
    422: {"model": Problem, "description": "The request does not validate: `invalid-params` names each field."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such thing."}}

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
BigLimit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]  # what /alerts and /tickets always took
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")]
Count = Annotated[
    Literal["capped", "exact"], Query(description="`exact` counts every matching row (slower on big tables).")
]
ClientKey = Annotated[str | None, Query(min_length=1, max_length=100, pattern=KEY, description="A client's key.")]
PeriodQ = Annotated[str | None, Query(pattern=PERIOD, description="YYYY-MM")]


def invalid(name: str, where: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"loc": (where, name), "msg": reason, "type": "value_error"}])


def within_reason(day: Date, name: str, where: str) -> None:
    """Dates that drive allocation stay within ten years back and one year ahead of today."""
    today = clock.today()
    if not today - timedelta(days=3653) <= day <= today + timedelta(days=366):
        raise invalid(name, where, f"{day.isoformat()} is too far from today ({today.isoformat()})")


def page(name: str, found: queries.Page) -> dict[str, Any]:
    return {name: found.items} | found.meta()


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=PROBLEMS)

    def require(permission: str) -> Any:
        def check(
            request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
        ) -> Principal:
            principal = token_principal(db(), credentials.credentials.strip()) if credentials else None
            if principal is None:
                raise HTTPException(401, "a valid API token is required (Authorization: Bearer …)")
            request.state.actor = principal.actor
            if not principal.may(permission):
                raise HTTPException(403, f"a {principal.role} token may not do this (needs {permission})")
            return principal

        return check

    def route(method: str, path: str, permission: str, **kwargs: Any) -> Callable[[Any], Any]:
        extra = {"x-permission": permission}
        return router.api_route(path, methods=[method], openapi_extra=extra, **kwargs)

    Read = Annotated[Principal, Depends(require("read"))]

    # ------------------------------------------------------------------------------ who am I

    @route("GET", "/me", "read", tags=["accounts"], response_model=Me, summary="The caller: user, role, rights")
    def me(principal: Read) -> dict[str, Any]:
        return principal.as_json()

    # ------------------------------------------------------------------------------ clients

    @route("GET", "/clients", "read", tags=["clients"], response_model=ClientPage, summary="Clients with their class")
    def clients(
        _: Read,
        klass: Annotated[ClientClass | None, Query(alias="class", description="Only clients of this class.")] = None,
        q: Annotated[str | None, Query(max_length=100, pattern=TEXT, description="Part of a key or a name.")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        return page("clients", queries.clients_page(db(), clock.today(), klass, q, limit, offset))

    @route(
        "GET",
        "/clients/{key}",
        "read",
        tags=["clients"],
        response_model=ClientOut,
        responses=NOT_FOUND,
        summary="A client: class, agreements, balances, devices",
    )
    def client(key: Annotated[str, Path(max_length=100, pattern=KEY)], _: Read) -> dict[str, Any]:
        view, devices = queries.client_view(db(), key, clock.today())
        first = queries.devices_page(db(), key, 100, 0).items
        return queries.client_summary(view, devices) | {"devices": first}

    @route(
        "GET",
        "/clients/{key}/devices",
        "read",
        tags=["clients"],
        response_model=DevicePage,
        responses=NOT_FOUND,
        summary="A client's devices",
    )
    def devices(
        key: Annotated[str, Path(max_length=100, pattern=KEY)], _: Read, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        return page("devices", queries.devices_page(db(), key, limit, offset))

    @route(
        "GET",
        "/clients/{key}/ledger",
        "read",
        tags=["clients"],
        response_model=LedgerPage,
        responses=NOT_FOUND,
        summary="A client's prepaid ledger, newest first, with running balances",
    )
    def ledger(
        key: Annotated[str, Path(max_length=100, pattern=KEY)], _: Read, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        return page("entries", queries.ledger_page(db(), key, clock.today(), limit, offset))

    # ------------------------------------------------------------------------------ agreements, blocks

    @route("GET", "/agreements", "read", tags=["agreements"], response_model=AgreementPage, responses=NOT_FOUND)
    def agreements(
        _: Read,
        client: ClientKey = None,
        kind: AgreementKind | None = None,
        active_on: Annotated[Date | None, Query(description="Only agreements active on this day.")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Agreements by key."""
        return page("agreements", queries.agreements_page(db(), client, kind, active_on, limit, offset))

    @route("GET", "/blocks", "read", tags=["agreements"], response_model=BlockPage, responses=NOT_FOUND)
    def blocks(_: Read, client: ClientKey = None, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        """Prepaid blocks, newest first, with the minutes left on each today."""
        return page("blocks", queries.blocks_page(db(), clock.today(), client, limit, offset))

    # ------------------------------------------------------------------------------ time

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
        )
        return logged.as_json()

    # ------------------------------------------------------------------------------ invoices, billing

    @route("GET", "/invoices", "read", tags=["invoices"], response_model=InvoicePage, responses=NOT_FOUND)
    def invoices(
        _: Read,
        client: ClientKey = None,
        period: PeriodQ = None,
        status: Literal["draft", "issued", "paid", "void"] | None = None,
        kind: Literal["monthly", "prepayment", "final"] | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Invoices, newest first, with their lines."""
        return page("invoices", queries.invoices_page(db(), client, period, status, kind, limit, offset))

    @route("GET", "/invoices/{number}", "read", tags=["invoices"], response_model=InvoiceOut, responses=NOT_FOUND)
    def invoice(number: Annotated[str, Path(max_length=50, pattern=NUMBER)], _: Read) -> dict[str, Any]:
        """One invoice with its lines."""
        return get_invoice(db(), number)

    def invoice_change(action: str) -> Callable[..., dict[str, Any]]:
        def change(
            number: Annotated[str, Path(max_length=50, pattern=NUMBER)],
            principal: Annotated[Principal, Depends(require("invoices.change"))],
        ) -> dict[str, Any]:
            return principal.act(change_status, db(), number, action)

        change.__name__ = f"invoice_{action}"
        return change

    def ticket_change(action: str) -> Callable[..., dict[str, Any]]:
        def work(
            ticket: Annotated[int, Path(ge=1, le=MAX_ID)],
            principal: Annotated[Principal, Depends(require("tickets.work"))],
        ) -> dict[str, Any]:
            return principal.act(change_ticket, db(), ticket, action)

        work.__name__ = f"ticket_{action}"
        return work

    for action, summary in (
        ("issue", "Issue a draft invoice"),
        ("pay", "Mark an issued invoice paid"),
        ("void", "Void a draft or issued invoice (its work is billed again by the next run)"),
    ):
        route(
            "POST",
            f"/invoices/{{number}}/{action}",
            "invoices.change",
            tags=["invoices"],
            response_model=InvoiceOut,
            responses=NOT_FOUND,
            summary=summary,
        )(invoice_change(action))

    @route(
        "POST",
        "/billing/runs",
        "billing.run",
        tags=["invoices"],
        response_model=BillingRunOut,
        summary="Run billing for a month (safe to run again: a rerun changes nothing)",
    )
    async def billing_run(
        body: BillingRunIn, principal: Annotated[Principal, Depends(require("billing.run"))]
    ) -> dict[str, Any]:
        within_reason(Date(int(body.period[:4]), int(body.period[5:7]), 1), "period", "body")
        result = await run_in_threadpool(principal.act, run_billing, db(), body.period)
        summary = result.as_json()
        return summary | {"invoices": [i["number"] for i in result.invoices]}

    # ------------------------------------------------------------------------------ alerts, tickets

    @route("GET", "/alerts", "read", tags=["alerts"], response_model=AlertPage, responses=NOT_FOUND)
    def alerts(
        _: Read,
        client: ClientKey = None,
        decision: Literal["ticket", "quote", "forward", "suppress", "orphaned", "pending"] | None = None,
        status: Literal["firing", "resolved"] | None = None,
        limit: BigLimit = 100,
        offset: Offset = 0,
        count: Count = "capped",
    ) -> dict[str, Any]:
        """Alerts with their decisions, newest first."""
        return page("alerts", queries.alerts_page(db(), client, decision, status, limit, offset, count == "exact"))

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

    # ------------------------------------------------------------------------------ offboarding

    @route("GET", "/offboarding/runs", "read", tags=["offboarding"], response_model=RunPage, responses=NOT_FOUND)
    def runs(
        _: Read,
        client: ClientKey = None,
        state: Literal["planned", "running", "waiting", "done", "failed"] | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Offboarding runs, newest first, with their steps counted by state."""
        return page("runs", queries.runs_page(db(), client, state, limit, offset))

    @route(
        "GET", "/offboarding/runs/{run}", "read", tags=["offboarding"], response_model=RunDetail, responses=NOT_FOUND
    )
    def run(run: Annotated[int, Path(ge=1, le=MAX_ID)], _: Read) -> dict[str, Any]:
        """A run with every step, its state, and each attempt."""
        return queries.run_detail(db(), run)

    @route(
        "GET",
        "/offboarding/runs/{run}/steps",
        "read",
        tags=["offboarding"],
        response_model=StepsOut,
        responses=NOT_FOUND,
    )
    def steps(
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        _: Read,
        phase: Annotated[int | None, Query(ge=1, le=7)] = None,
        state: Literal["pending", "running", "waiting", "done", "skipped", "failed"] | None = None,
    ) -> dict[str, Any]:
        """A run's steps (filtered by phase or state), each with its attempts."""
        detail = queries.run_detail(db(), run)
        chosen = [
            st
            for st in detail["step_list"]
            if (phase is None or st["phase"] == phase) and (state is None or st["state"] == state)
        ]
        return {"run": run, "steps": chosen}

    # ------------------------------------------------------------------------------ reports

    @route("GET", "/reports/unpaid", "read", tags=["reports"], response_model=UnpaidReport)
    def unpaid(_: Read, period: Annotated[str, Query(pattern=PERIOD, description="YYYY-MM")]) -> dict[str, Any]:
        """The unpaid-work report (DOMAIN.md) for one month."""
        return unpaid_report(db(), period)

    return router


def install(app: FastAPI, db: Callable[[], Database]) -> None:
    """Add the v1 routes."""
    app.include_router(make_router(db))

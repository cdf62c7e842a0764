"""REST API v1: invoices and the monthly billing run."""

from collections.abc import Callable
from datetime import date as Date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from tenure.accounts.users import Principal
from tenure.api.common import (
    KEY,
    NOT_FOUND,
    NUMBER,
    PERIOD,
    TEXT,
    WRITES,
    Api,
    ClientKey,
    Limit,
    Offset,
    PageMeta,
    PeriodQ,
    page,
    within_reason,
)
from tenure.api.problems import ProblemDetails as Problem
from tenure.billing import mailing
from tenure.billing.charges import add_charge, edit_charge, get_charge, list_charges, void_charge
from tenure.billing.render import invoice_pdf, statement_pdf
from tenure.billing.service import change_status, csv_rows, csv_text, get_invoice, run_billing
from tenure.errors import Busy, ValidationFailed
from tenure.web import queries
from tenure.web.billing import attachment


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


class MailOut(BaseModel):
    notice: int = Field(description="The notice in the outbox (`tenure notices show N`).")
    state: str = Field(description="`waiting` to be sent; `kept` when the client has no address (not sent).")
    to: list[str]
    error: str | None


class InvoiceIssuedOut(InvoiceOut):
    mail: MailOut | None = Field(None, description="The invoice's mail to the client's billing contacts.")


class IssuedOne(BaseModel):
    number: str
    client: str
    total: str
    mail: MailOut


class Refusal(BaseModel):
    number: str
    error: str


class IssueManyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    numbers: list[Annotated[str, Field(max_length=50, pattern=NUMBER)]] | None = Field(
        None, max_length=1000, description="Drafts to issue."
    )
    period: str | None = Field(None, pattern=PERIOD, description="Or: every draft dated in this month (a run's).")


class IssueManyOut(BaseModel):
    period: str | None = None
    issued: int
    refused: list[Refusal]
    invoices: list[IssuedOne]


class SentOut(BaseModel):
    number: str
    client: str
    status: str
    mail: MailOut


class InvoicePage(PageMeta):
    invoices: list[InvoiceOut]


class ChargeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=500, description="What it is: `SSD 1 TB for ACME-WS04`.")
    amount: str = Field(max_length=20, description="What the client pays in all (`249.00`).")
    cost: str | None = Field(None, max_length=20, description="What it cost the MSP.")
    date: Date | None = Field(None, description="The day of the charge (default today).")
    key: str | None = Field(None, max_length=100, pattern=KEY)
    quantity: str | None = Field(None, max_length=20, description="Describes it only (`2`).")


class BillingRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = Field(pattern=PERIOD, description="The invoice month, YYYY-MM.")


class BillingRunOut(BaseModel):
    period: str
    created: int
    already_invoiced: int
    total: str
    invoices: list[str] = Field(description="Numbers of the invoices made by this run.")


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db, require, Read = api.db, api.require, api.principal("read")

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

    @route("GET", "/invoices/{number}/pdf", "read", tags=["invoices"], responses=NOT_FOUND,
           response_class=Response, summary="The invoice as the client gets it, as PDF (a download)",
           openapi_extra={"responses": {"200": {"content": {"application/pdf": {}}}}})  # fmt: skip
    def invoice_pdf_download(number: Annotated[str, Path(max_length=50, pattern=NUMBER)], _: Read) -> Response:
        found = get_invoice(db(), number)
        return Response(invoice_pdf(db(), found), media_type="application/pdf", headers=attachment(number, "pdf"))

    @route("GET", "/invoices/{number}/csv", "read", tags=["invoices"], responses=NOT_FOUND,
           response_class=Response, summary="The invoice's lines as CSV, as `tenure invoice export` writes them",
           openapi_extra={"responses": {"200": {"content": {"text/csv": {}}}}})  # fmt: skip
    def invoice_csv_download(number: Annotated[str, Path(max_length=50, pattern=NUMBER)], _: Read) -> Response:
        text = csv_text(csv_rows([get_invoice(db(), number)]))
        return Response(text, media_type="text/csv; charset=utf-8", headers=attachment(number, "csv"))

    def invoice_change(action: str) -> Callable[..., dict[str, Any]]:
        def change(
            number: Annotated[str, Path(max_length=50, pattern=NUMBER)],
            principal: Annotated[Principal, Depends(require("invoices.change"))],
        ) -> dict[str, Any]:
            if action == "issue":
                return principal.act(mailing.issue_one, db(), number)
            return principal.act(change_status, db(), number, action)

        change.__name__ = f"invoice_{action}"
        return change

    @route(
        "POST",
        "/billing/runs",
        "billing.run",
        tags=["invoices"],
        response_model=BillingRunOut,
        responses={409: {"model": Problem, "description": "Another run of the month held it too long; try again."}},
        summary="Run billing for a month (safe to run again: a rerun changes nothing)",
    )
    async def billing_run(
        body: BillingRunIn, principal: Annotated[Principal, Depends(require("billing.run"))]
    ) -> dict[str, Any]:
        within_reason(Date(int(body.period[:4]), int(body.period[5:7]), 1), "period", "body")
        try:  # a run of the same month at the same time waits for it, then changes nothing
            result = await run_in_threadpool(principal.act, run_billing, db(), body.period)
        except Busy as exc:
            raise HTTPException(409, str(exc)) from None
        summary = result.as_json()
        return summary | {"invoices": [i["number"] for i in result.invoices]}

    for action, summary in (
        ("issue", "Issue a draft invoice and mail it to the client's billing contacts, its PDF attached"),
        ("pay", "Mark an issued invoice paid (its reminders stop)"),
        ("void", "Void a draft or issued invoice (its work is billed again by the next run)"),
    ):
        route(
            "POST",
            f"/invoices/{{number}}/{action}",
            "invoices.change",
            tags=["invoices"],
            response_model=InvoiceIssuedOut if action == "issue" else InvoiceOut,
            responses=NOT_FOUND,
            summary=summary,
        )(invoice_change(action))

    @route("POST", "/invoices/issue", "invoices.change", tags=["invoices"], response_model=IssueManyOut,
           summary="Issue and mail several drafts, or every draft of a month (a billing run's) at once")  # fmt: skip
    async def issue_many(
        body: IssueManyIn, principal: Annotated[Principal, Depends(require("invoices.change"))]
    ) -> dict[str, Any]:
        if (body.numbers is None) == (body.period is None):
            raise ValidationFailed(["numbers: give either `numbers` or `period`"])
        if body.period:
            within_reason(Date(int(body.period[:4]), int(body.period[5:7]), 1), "period", "body")
            return await run_in_threadpool(principal.act, mailing.issue_drafts, db(), body.period)
        return await run_in_threadpool(principal.act, mailing.issue_invoices, db(), body.numbers or [])

    @route("POST", "/invoices/{number}/send", "invoices.change", tags=["invoices"], response_model=SentOut,
           responses=NOT_FOUND, summary="Mail an issued or paid invoice again, its PDF attached")  # fmt: skip
    def invoice_send(
        number: Annotated[str, Path(max_length=50, pattern=NUMBER)],
        principal: Annotated[Principal, Depends(require("invoices.change"))],
    ) -> dict[str, Any]:
        return principal.act(mailing.send_again, db(), number)

    # ------------------------------------------------------------------------------ charges

    Bookkeeper = api.principal("agreements.edit")
    ClientPath = Annotated[str, Path(max_length=100, pattern=KEY, description="The client's key.")]
    ChargePath = Annotated[str, Path(max_length=100, pattern=KEY, description="The charge's key.")]

    @route("GET", "/clients/{key}/charges", "read", tags=["invoices"], responses=NOT_FOUND,
           summary="A client's charges (parts, materials, one-off), with the invoice that billed each")  # fmt: skip
    def charges(key: ClientPath, _: Read) -> list[dict[str, Any]]:
        return list_charges(db(), key)

    @route("POST", "/clients/{key}/charges", "agreements.edit", tags=["invoices"], status_code=201,
           responses=WRITES, summary="Record a charge: billed in arrears on the next monthly invoice")  # fmt: skip
    async def add(key: ClientPath, body: ChargeIn, principal: Bookkeeper) -> dict[str, Any]:
        fields = body.model_dump(exclude_none=True)
        return await run_in_threadpool(principal.act, add_charge, db(), key, **fields)

    @route("GET", "/clients/{key}/charges/{item}", "read", tags=["invoices"], responses=NOT_FOUND,
           summary="A charge")  # fmt: skip
    def charge(key: ClientPath, item: ChargePath, _: Read) -> dict[str, Any]:
        return get_charge(db(), key, item)

    @route("PATCH", "/clients/{key}/charges/{item}", "agreements.edit", tags=["invoices"], responses=WRITES,
           summary="Change a charge not yet billed (a billed one keeps its amount and date)")  # fmt: skip
    async def change(
        key: ClientPath, item: ChargePath, body: Annotated[dict[str, Any], Body()], principal: Bookkeeper
    ) -> dict[str, Any]:
        return await run_in_threadpool(principal.act, edit_charge, db(), key, item, body)

    @route("DELETE", "/clients/{key}/charges/{item}", "agreements.edit", tags=["invoices"], responses=WRITES,
           summary="Void a charge (credited on the next invoice if it was billed)")  # fmt: skip
    async def void(
        key: ClientPath,
        item: ChargePath,
        principal: Bookkeeper,
        reason: Annotated[str | None, Query(max_length=500, pattern=TEXT)] = None,
    ) -> dict[str, Any]:
        return await run_in_threadpool(principal.act, void_charge, db(), key, item, reason)

    # ------------------------------------------------------------------------- statement of account

    Since = Annotated[Date | None, Query(description="Payments from this day (default a year back).")]

    def statement_pdf_response(key: str, since: Date | None) -> Response:
        shown = mailing.statement(db(), key, since)
        return Response(
            statement_pdf(shown),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="statement-{shown["client"]}-{shown["date"]}.pdf"'},
        )

    @route("GET", "/clients/{key}/statement", "read", tags=["invoices"], responses=NOT_FOUND,
           summary="A client's statement of account: open invoices, payments, balance (PDF with Accept: "
           "application/pdf)")  # fmt: skip
    def statement(key: ClientPath, _: Read, request: Request, since: Since = None) -> Any:
        if "application/pdf" in request.headers.get("accept", ""):
            return statement_pdf_response(key, since)
        return mailing.statement(db(), key, since)

    @route("GET", "/clients/{key}/statement.pdf", "read", tags=["invoices"], responses=NOT_FOUND,
           response_class=Response, summary="A client's statement of account as PDF")  # fmt: skip
    def statement_document(key: ClientPath, _: Read, since: Since = None) -> Response:
        return statement_pdf_response(key, since)

    @route("POST", "/clients/{key}/statement/send", "invoices.change", tags=["invoices"], responses=NOT_FOUND,
           summary="Mail the client's statement of account to its billing contacts, its PDF attached")  # fmt: skip
    def statement_send(
        key: ClientPath,
        principal: Annotated[Principal, Depends(require("invoices.change"))],
        since: Since = None,
    ) -> dict[str, Any]:
        return principal.act(mailing.send_statement, db(), key, since)

    return router

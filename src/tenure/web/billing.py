"""Billing: the invoice list, running a period, issuing drafts in bulk (selected, or all of a run's), one
invoice (its page, its printable document, its mail, and its actions: issue, pay, void, send again), and a
client's statement of account (page, PDF, mail)."""

from collections.abc import Callable
from datetime import date
from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from tenure.billing import mailing
from tenure.billing.render import invoice_html, invoice_pdf, statement_pdf
from tenure.billing.service import change_status, csv_rows, csv_text, get_invoice, run_billing
from tenure.book import history as changelog
from tenure.db.engine import Database
from tenure.errors import NotFound, TenureError
from tenure.web import queries
from tenure.web.common import (
    CSP,
    PAGE_SIZE,
    PERIOD,
    Gate,
    Refused,
    Who,
    redirect,
    safe_next,
    secure_headers,
    show,
    this_period,
    today_minus,
)

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/billing", "read"),
    ("POST", "/billing/run", "billing.run"),
    ("POST", "/billing/issue", "invoices.change"),
    ("POST", "/billing/issue-drafts", "invoices.change"),
    ("GET", "/invoices/{number}", "read"),
    ("GET", "/invoices/{number}/document", "read"),
    ("GET", "/invoices/{number}/pdf", "read"),
    ("GET", "/invoices/{number}/csv", "read"),
    ("POST", "/invoices/{number}/{action}", "invoices.change"),
    ("GET", "/clients/{key}/statement", "read"),
    ("GET", "/clients/{key}/statement.pdf", "read"),
    ("POST", "/clients/{key}/statement/send", "invoices.change"),
]


def _mail_said(mail: dict[str, Any] | None) -> str:
    if not mail:
        return ""
    if mail["state"] == "kept":
        return f"; not mailed: {mail['error']}"
    return f"; mailed to {', '.join(mail['to'])} (through the outbox)"


def _issued(back: str, result: dict[str, Any]) -> Response:
    issued, problems = result["issued"], [r["error"] for r in result["refused"]]
    kept = sum(1 for i in result["invoices"] if i["mail"]["state"] == "kept")
    message = f"{issued} invoice(s) issued and mailed" + (f" ({kept} not mailed: no contact address)" if kept else "")
    if problems:
        message += f"; {len(problems)} refused: {problems[0]}"
    return redirect(back, message, error=bool(problems) and not issued)


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]

    @router.get("/billing", response_class=HTMLResponse)
    def billing(
        request: Request,
        who: Read,
        period: Annotated[str | None, Query(max_length=7)] = None,
        status: Annotated[str | None, Query(max_length=10)] = None,
        client: Annotated[str | None, Query(max_length=100)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        shown: dict[str, Any] = {"period": period, "status": status, "client": client, "next_period": this_period()}
        empty = queries.Page([], 0, True, PAGE_SIZE, offset)
        if period and not PERIOD.fullmatch(period):
            return show(request, who, "billing.html", page=empty, problem=f"period {period!r} is not YYYY-MM", **shown)
        try:
            found = queries.invoices_page(db(), client or None, period or None, status or None, None, PAGE_SIZE, offset)
        except TenureError as exc:
            return show(request, who, "billing.html", page=empty, problem=str(exc), **shown)
        return show(request, who, "billing.html", page=found, problem=None, **shown)

    @router.post("/billing/run")
    def billing_run(
        who: Annotated[Who, Depends(gate.form("billing.run"))],
        period: Annotated[str, Form(max_length=7)],
    ) -> Response:
        if not PERIOD.fullmatch(period):
            return redirect("/billing", f"period {period!r} is not YYYY-MM", error=True)
        start = date(int(period[:4]), int(period[5:7]), 1)
        if not today_minus(3653) <= start <= today_minus(-366):
            return redirect("/billing", f"{period} is too far from today", error=True)
        try:
            result = who[0].act(run_billing, db(), period).as_json()
        except TenureError as exc:
            return redirect("/billing", str(exc), error=True)
        return redirect(
            f"/billing?period={period}&status=draft",
            f"billing run {period}: {result['created']} invoice(s) made, total {result['total']}; "
            f"{result['already_invoiced']} client(s) already invoiced",
        )

    @router.post("/billing/issue")
    async def billing_issue(request: Request, who: Annotated[Who, Depends(gate.form("invoices.change"))]) -> Response:
        data = request.state.form
        numbers = [str(n) for n in data.getlist("number")][: PAGE_SIZE * 2]
        back = safe_next(str(data.get("back") or "/billing"))
        result = await run_in_threadpool(who[0].act, mailing.issue_invoices, db(), numbers)
        return _issued(back, result)

    @router.post("/billing/issue-drafts")
    async def billing_issue_drafts(
        who: Annotated[Who, Depends(gate.form("invoices.change"))], period: Annotated[str, Form(max_length=7)]
    ) -> Response:
        if not PERIOD.fullmatch(period):
            return redirect("/billing", f"period {period!r} is not YYYY-MM", error=True)
        result = await run_in_threadpool(who[0].act, mailing.issue_drafts, db(), period)
        return _issued(f"/billing?period={period}", result)

    @router.get("/invoices/{number}", response_class=HTMLResponse)
    def invoice(request: Request, number: str, who: Read) -> HTMLResponse:
        found = get_invoice(db(), number)
        changes = changelog.history(db(), "invoice", number, 50)["changes"]
        mails = mailing.mail_history(db(), number)
        return show(request, who, "invoice.html", invoice=found, changes=changes, mails=mails)

    @router.get("/invoices/{number}/document", response_class=HTMLResponse)
    def invoice_document(number: str, who: Read) -> HTMLResponse:
        document = invoice_html(db(), get_invoice(db(), number))
        # the client's copy as it is mailed, with a way back that neither printing nor the PDF shows
        back = (
            f'<p class="way-back" style="font:14px sans-serif;margin:0 0 1rem"><a href="/invoices/{quote(number)}">'
            f'← Back to invoice {escape(number)}</a> · <a href="/invoices/{quote(number)}/pdf">PDF</a></p>'
            "<style>@media print { .way-back { display: none } }</style>"
        )
        document = document.replace("<body>", f"<body>{back}", 1) if "<body>" in document else back + document
        response = HTMLResponse(document)
        secure_headers(response, CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"))
        return response

    @router.get("/invoices/{number}/pdf")
    def invoice_download(number: str, who: Read) -> Response:
        found = get_invoice(db(), number)
        return Response(invoice_pdf(db(), found), media_type="application/pdf", headers=attachment(number, "pdf"))

    @router.get("/invoices/{number}/csv")
    def invoice_lines(number: str, who: Read) -> Response:
        text = csv_text(csv_rows([get_invoice(db(), number)]))
        return Response(text, media_type="text/csv; charset=utf-8", headers=attachment(number, "csv"))

    @router.post("/invoices/{number}/{action}")
    def invoice_action(
        number: str, action: str, who: Annotated[Who, Depends(gate.form("invoices.change"))]
    ) -> Response:
        back = f"/invoices/{quote(number)}"
        if action not in ("issue", "pay", "void", "send"):
            raise Refused(404, f"no invoice action {action!r}")
        try:
            if action == "send":
                done = who[0].act(mailing.send_again, db(), number)
            elif action == "issue":
                done = who[0].act(mailing.issue_one, db(), number)
            else:
                done = who[0].act(change_status, db(), number, action)
        except NotFound:
            raise
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        if action == "send":
            return redirect(back, f"invoice {number}{_mail_said(done['mail'])}")
        return redirect(back, f"invoice {done['number']} is {done['status']}{_mail_said(done.get('mail'))}")

    # --------------------------------------------------------------------------- statement of account

    @router.get("/clients/{key}/statement", response_class=HTMLResponse)
    def statement(request: Request, key: str, who: Read) -> HTMLResponse:
        return show(request, who, "statement.html", st=mailing.statement(db(), key))

    @router.get("/clients/{key}/statement.pdf")
    def statement_document(key: str, who: Read) -> Response:
        shown = mailing.statement(db(), key)
        return Response(
            statement_pdf(shown),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="statement-{shown["client"]}-{shown["date"]}.pdf"'},
        )

    @router.post("/clients/{key}/statement/send")
    def statement_send(key: str, who: Annotated[Who, Depends(gate.form("invoices.change"))]) -> Response:
        back = f"/clients/{quote(key)}/statement"
        try:
            done = who[0].act(mailing.send_statement, db(), key)
        except NotFound:
            raise
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        return redirect(back, f"statement{_mail_said(done['mail'])}")

    return router


def attachment(number: str, extension: str) -> dict[str, str]:
    """A download named after the invoice (its number made safe for a file name)."""
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in number)
    return {"Content-Disposition": f'attachment; filename="invoice-{name}.{extension}"'}

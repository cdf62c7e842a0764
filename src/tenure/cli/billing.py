"""`tenure billing run|final` and `tenure invoice list|show|issue|pay|void|export`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tenure.billing import mailing, service
from tenure.billing.render import invoice_html, invoice_pdf, statement_html, statement_pdf
from tenure.cli.common import (
    LIST_LIMIT,
    AllOpt,
    JsonOpt,
    LimitOpt,
    NowOpt,
    OffsetOpt,
    apply_now,
    db,
    err,
    new_table,
    out,
    paged,
    print_json,
)

if TYPE_CHECKING:
    from rich.table import Table

billing = typer.Typer(help="The monthly billing run and the final invoice.", no_args_is_help=True)
invoice = typer.Typer(
    help="Invoices: list, show, issue (and mail), send again, pay, void, export; a client's statement.",
    no_args_is_help=True,
)


def _invoice_table(invoices: list[dict[str, Any]], title: str) -> Table:
    table = new_table(title=title)
    for column in ("number", "client", "kind", "date", "due", "status", "lines", "total"):
        table.add_column(column, justify="right" if column in ("lines", "total") else "left")
    for inv in invoices:
        table.add_row(
            inv["number"],
            inv["client"],
            inv["kind"],
            inv["date"],
            inv["due_date"],
            inv["status"],
            str(len(inv["lines"])),
            inv["total"],
        )
    return table


@billing.command("run")
def run(
    period: Annotated[str, typer.Option(help="The invoice month, YYYY-MM.", show_default=False)],
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Invoice every client for PERIOD: fees in advance, earlier usage in arrears. Safe to run again."""
    apply_now(now)
    result = service.run_billing(db(), period)
    if json_:
        print_json(result.as_json())
        return
    summary = result.as_json()
    if result.invoices:
        out.print(_invoice_table(result.invoices, f"Billing run {period}"))
    err.print(
        f"{summary['created']} invoices created for {period} (total {summary['total']}); "
        f"{summary['already_invoiced']} clients were already invoiced for it"
    )


@billing.command("final")
def final(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    end: Annotated[str, typer.Option(help="End of service, YYYY-MM-DD.", show_default=False)],
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """End the client's agreements on END and make its final invoice (usage, credits, prepaid settled)."""
    apply_now(now)
    try:
        end_date = date.fromisoformat(end)
    except ValueError:
        raise typer.BadParameter(f"{end!r} is not a date (YYYY-MM-DD)", param_hint="--end") from None
    result = service.final_invoice(db(), client, end_date)
    if json_:
        print_json(result)
        return
    _show(result)


def _show(inv: dict[str, Any]) -> None:
    out.print(
        f"[bold]Invoice {inv['number']}[/bold] — {inv['client']} · {inv['kind']} · {inv['status']} · "
        f"dated {inv['date']}, due {inv['due_date']}"
    )
    table = new_table()
    for column in ("kind", "description", "quantity", "unit price", "amount"):
        table.add_column(column, justify="right" if column in ("quantity", "unit price", "amount") else "left")
    for line in inv["lines"]:
        table.add_row(line["kind"], line["description"], line["quantity"], line["unit_price"], line["amount"])
    table.add_row("", "[bold]total[/bold]", "", "", f"[bold]{inv['total']}[/bold]")
    out.print(table)


@invoice.command("list")
def list_(
    client: Annotated[str | None, typer.Option(help="Only this client.")] = None,
    period: Annotated[str | None, typer.Option(help="Only invoices dated in this month, YYYY-MM.")] = None,
    status: Annotated[str | None, typer.Option(help="draft, issued, paid or void.")] = None,
    kind: Annotated[str | None, typer.Option(help="monthly, prepayment or final.")] = None,
    limit: LimitOpt = LIST_LIMIT,
    offset: OffsetOpt = 0,
    all_: AllOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Invoices, oldest first."""
    invoices = paged(
        lambda n, skip: service.list_invoices(db(), client, period, status, kind, n, skip),
        limit,
        offset,
        all_,
        "invoices",
    )
    if json_:
        print_json({"invoices": invoices})
        return
    out.print(_invoice_table(invoices, "Invoices"))


@invoice.command("show")
def show(
    number: Annotated[str, typer.Argument(show_default=False)],
    html: Annotated[Path | None, typer.Option(help="Also write the invoice as HTML here.")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Also write the invoice as PDF here.")] = None,
    json_: JsonOpt = False,
) -> None:
    """One invoice with its lines; --html / --pdf render it from the same template."""
    inv = service.get_invoice(db(), number)
    if html:
        html.write_text(invoice_html(db(), inv), encoding="utf-8")
        err.print(f"wrote {html}")
    if pdf:
        pdf.write_bytes(invoice_pdf(db(), inv))
        err.print(f"wrote {pdf}")
    if json_:
        print_json(inv)
    else:
        _show(inv)


def _transition(action: str, number: str, json_: bool) -> None:
    inv = service.change_status(db(), number, action)
    if json_:
        print_json(inv)
    else:
        err.print(f"invoice {inv['number']} is now {inv['status']}")


def _mail_said(mail: dict[str, Any] | None) -> str:
    if not mail:
        return ""
    if mail["state"] == "kept":
        return f"; not mailed: {mail['error']}"
    return f"; mail to {', '.join(mail['to'])} waits in the outbox (notice {mail['notice']})"


@invoice.command("issue")
def issue(
    numbers: Annotated[list[str] | None, typer.Argument(help="Invoice numbers.", show_default=False)] = None,
    period: Annotated[str | None, typer.Option(help="With --all-drafts: the billing run's month, YYYY-MM.")] = None,
    all_drafts: Annotated[bool, typer.Option("--all-drafts", help="Every draft dated in --period.")] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Issue draft invoices and mail each to its client's billing contacts with the PDF attached (through the
    outbox, once). From now on an invoice is never edited, only voided and replaced."""
    apply_now(now)
    if all_drafts != bool(period):
        raise typer.BadParameter("--all-drafts and --period YYYY-MM go together", param_hint="--all-drafts")
    if all_drafts and numbers:
        raise typer.BadParameter("give invoice numbers or --period with --all-drafts, not both")
    if not all_drafts and not numbers:
        raise typer.BadParameter("give invoice numbers, or --period YYYY-MM --all-drafts", param_hint="NUMBERS")
    result = mailing.issue_drafts(db(), period) if period else mailing.issue_invoices(db(), numbers or [])
    if json_:
        print_json(result)
    else:
        for done in result["invoices"]:
            err.print(f"invoice {done['number']} ({done['client']}, {done['total']}) issued{_mail_said(done['mail'])}")
        if not result["invoices"] and not result["refused"]:
            err.print(f"no draft dated in {period}: nothing to issue")
    for refused in result["refused"]:
        err.print(f"invoice {refused['number']}: {refused['error']}", markup=False, highlight=False)
    if result["refused"]:
        raise typer.Exit(1)


@invoice.command("send")
def send(
    number: Annotated[str, typer.Argument(show_default=False)], now: NowOpt = None, json_: JsonOpt = False
) -> None:
    """Mail an issued (or paid) invoice again to the client's billing contacts, its PDF attached."""
    apply_now(now)
    result = mailing.send_again(db(), number)
    if json_:
        print_json(result)
    else:
        err.print(f"invoice {number}{_mail_said(result['mail'])}")


@invoice.command("statement")
def statement(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    since: Annotated[str | None, typer.Option(help="Payments from this day, YYYY-MM-DD (default a year back).")] = None,
    pdf: Annotated[Path | None, typer.Option(help="Also write the statement as PDF here.")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write the statement as HTML here.")] = None,
    send_: Annotated[bool, typer.Option("--send", help="Mail it to the client's billing contacts.")] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A client's statement of account: open invoices, payments received, the balance."""
    apply_now(now)
    try:
        since_day = date.fromisoformat(since) if since else None
    except ValueError:
        raise typer.BadParameter(f"{since!r} is not a date (YYYY-MM-DD)", param_hint="--since") from None
    shown = mailing.send_statement(db(), client, since_day) if send_ else mailing.statement(db(), client, since_day)
    if html:
        html.write_text(statement_html(shown), encoding="utf-8")
        err.print(f"wrote {html}")
    if pdf:
        pdf.write_bytes(statement_pdf(shown))
        err.print(f"wrote {pdf}")
    if json_:
        print_json(shown)
        return
    out.print(f"[bold]Statement of account[/bold] — {shown['name']} ({shown['client']}) on {shown['date']}")
    table = new_table(title="Open invoices")
    for column in ("number", "date", "due", "days overdue", "amount"):
        table.add_column(column, justify="right" if column in ("days overdue", "amount") else "left")
    for i in shown["open"]:
        table.add_row(i["number"], i["date"], i["due_date"], str(i["days_overdue"] or ""), i["total"])
    out.print(table)
    payments = new_table(title=f"Payments since {shown['since']}")
    for column in ("number", "paid on", "amount"):
        payments.add_column(column, justify="right" if column == "amount" else "left")
    for p in shown["payments"]:
        payments.add_row(p["number"], p["paid_on"], p["amount"])
    out.print(payments)
    out.print(f"balance [bold]{shown['balance']}[/bold] {shown['currency']}, of which {shown['overdue']} overdue")
    if send_:
        err.print(f"statement{_mail_said(shown['mail'])}")


@invoice.command("pay")
def pay(number: Annotated[str, typer.Argument(show_default=False)], json_: JsonOpt = False) -> None:
    """Mark an issued invoice paid."""
    _transition("pay", number, json_)


@invoice.command("void")
def void(number: Annotated[str, typer.Argument(show_default=False)], json_: JsonOpt = False) -> None:
    """Void a draft or issued invoice; its work is billed again by the next run of the period."""
    _transition("void", number, json_)


@invoice.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="The CSV file to write (one row per line).", show_default=False)],
    client: Annotated[str | None, typer.Option(help="Only this client.")] = None,
    period: Annotated[str | None, typer.Option(help="Only invoices dated in this month, YYYY-MM.")] = None,
    status: Annotated[str | None, typer.Option(help="draft, issued, paid or void.")] = None,
) -> None:
    """Invoices as CSV for accounting tools: one row per invoice line."""
    rows = service.csv_rows(service.list_invoices(db(), client, period, status))
    file.write_text(service.csv_text(rows), encoding="utf-8", newline="")
    err.print(f"wrote {len(rows)} lines to {file}")

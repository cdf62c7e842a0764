"""`tenure time log|show|edit|void`, `tenure block buy`, `tenure retainer deposit`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from tenure.agreements.changes import edit_time_entry, get_time_entry, void_time_entry
from tenure.agreements.preview import logged_warnings, preview_time
from tenure.agreements.service import log_time
from tenure.billing.service import buy_block, deposit
from tenure.cli.common import JsonOpt, NowOpt, apply_now, db, err, fields, new_table, out, print_json, show_object
from tenure.vocabulary import SERVICES

time_app = typer.Typer(help="Time entries: every minute is paid by exactly one layer.", no_args_is_help=True)
block_app = typer.Typer(help="Prepaid blocks of hours.", no_args_is_help=True)
retainer_app = typer.Typer(help="Retainer money held in advance.", no_args_is_help=True)


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


EntryId = Annotated[int, typer.Argument(help="The time entry's id (`tenure time log` prints it).", show_default=False)]


def _paid(entry: dict[str, object]) -> str:
    portions = entry.get("paid_by") or []
    paid = "; ".join(f"{p['minutes']} min {p['layer']}" for p in portions)  # type: ignore[index,union-attr]
    return paid or ("nothing (voided)" if entry.get("voided") else "nothing yet")


@time_app.command("show")
def show(entry: EntryId, json_: JsonOpt = False) -> None:
    """One time entry and how it is paid now."""
    found = get_time_entry(db(), entry)
    show_object(found, f"time entry {entry}: paid as {_paid(found)}", json_)


@time_app.command("edit")
def edit(
    entry: EntryId,
    minutes: Annotated[int | None, typer.Option(help="Minutes worked.", show_default=False)] = None,
    work_type: Annotated[str | None, typer.Option("--type", help=f"One of {', '.join(SERVICES)}.")] = None,
    on: Annotated[str | None, typer.Option("--date", help="The day of the work.", show_default=False)] = None,
    client: Annotated[
        str | None, typer.Option("--client", help="Move it to this client (logged on the wrong one).")
    ] = None,
    technician: Annotated[str | None, typer.Option(help="Who did it.", show_default=False)] = None,
    note: Annotated[str | None, typer.Option(help="What was done.", show_default=False)] = None,
    reason: Annotated[str | None, typer.Option(help="Why it is corrected (kept on the entry).")] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Correct a time entry: only what is given. Work already invoiced is corrected on the next invoice."""
    apply_now(now)
    given = {"minutes": minutes, "work_type": work_type, "date": on, "client": client}
    changes = fields(given | {"technician": technician, "note": note})
    if not changes:
        raise typer.BadParameter("nothing to change: give --minutes, --type, --date, --client, --technician or --note")
    changed = edit_time_entry(db(), entry, changes, reason=reason)
    show_object(changed, f"time entry {entry}: corrected, paid as {_paid(changed)}", json_)


@time_app.command("void")
def void(
    entry: EntryId,
    reason: Annotated[str, typer.Option(help="Why it is voided (required; kept on the entry).", show_default=False)],
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Void a time entry: it stays on record and counts for nothing (credited on the next invoice if billed)."""
    apply_now(now)
    show_object(void_time_entry(db(), entry, reason), f"time entry {entry}: voided", json_)


def _decimal(value: str, option: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a number", param_hint=option) from None


@time_app.command("log")
def log(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    minutes: Annotated[int, typer.Option(help="Minutes worked (rounded up to the MSP's unit when paid).")],
    work_type: Annotated[str, typer.Option("--type", help=f"One of {', '.join(SERVICES)}.")],
    on: Annotated[str | None, typer.Option("--date", help="The day of the work (default today).")] = None,
    technician: Annotated[str | None, typer.Option(help="Who did it.")] = None,
    note: Annotated[str | None, typer.Option(help="What was done.")] = None,
    ticket: Annotated[int | None, typer.Option(help="The ticket the work was on.", show_default=False)] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say who would pay (and warn); save nothing.")
    ] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Log work and see at once which layer pays it (included hours, block, retainer, or billed); warnings
    (work nothing covers, a retainer at zero) on stderr. `--dry-run` says who would pay and saves nothing."""
    apply_now(now)
    day = _date(on, "--date")
    if dry_run:
        _preview(client, minutes, work_type, day, technician, ticket, json_)
        return
    logged = log_time(db(), client, minutes, work_type, day, technician, note, ticket)
    # a former client is not said here: log_time does not work out the class (`--dry-run` does)
    warnings = logged_warnings(logged)
    if json_:
        print_json(logged.as_json() | {"warnings": warnings})
        _warn(warnings)
        return
    paid = (
        "; ".join(
            f"{p['minutes']} min {p['layer']}"
            + (f" ({p['block']})" if p["block"] else "")
            + (f" at {p['rate']}/h" if p["rate"] else "")
            for p in logged.portions
        )
        or "not yet allocated (future date)"
    )
    out.print(
        f"logged {logged.key} (id {logged.id}): {logged.minutes} min {logged.work_type} for {client} on {logged.date} "
        + (f"on ticket #{ticket} " if ticket else "")
        + f"(paid as {logged.rounded_minutes} min: {paid})"
    )
    _warn(warnings)
    if logged.on_hold:
        err.print(f"ON HOLD: {client}'s work waits for a deposit (`tenure retainer deposit`)")


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)


def _preview(
    client: str, minutes: int, work_type: str, day: date | None, technician: str | None, ticket: int | None, json_: bool
) -> None:
    """`time log --dry-run`: the document `POST /api/v1/time-entries/preview` answers, or a table of it."""
    found = preview_time(db(), client, minutes, work_type, day, technician=technician, ticket=ticket)
    if json_:
        print_json(found)
        _warn(found["warnings"])
        return
    table = new_table(
        title=f"{client}: {minutes} min {work_type} on {found['date']} would be paid as {found['rounded_minutes']} min"
    )
    for column in ("layer", "minutes", "from", "rate", "amount"):
        table.add_column(column, justify="right" if column in ("minutes", "rate", "amount") else "left")
    for p in found["portions"]:
        table.add_row(p["layer"], str(p["minutes"]), p["block"] or p["agreement"] or "", p["rate"] or "", p["amount"])
    out.print(table)
    if not found["portions"]:
        out.print("not yet allocated (future date)")
    _warn(found["warnings"])
    err.print("dry run: nothing saved", markup=False, highlight=False)


@block_app.command("buy")
def buy(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    hours: Annotated[str, typer.Option(help="Hours bought (bonus hours come from the MSP's table).")],
    price: Annotated[str, typer.Option(help="The price, e.g. 2400.00.")],
    on: Annotated[str | None, typer.Option("--date", help="Purchase date (default today).")] = None,
    expires: Annotated[str | None, typer.Option(help="Last day its hours can be used.")] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Sell a block of hours: ledger purchase and bonus, and a prepayment invoice."""
    apply_now(now)
    inv = buy_block(
        db(),
        client,
        _decimal(hours, "--hours"),
        _decimal(price, "--price"),
        _date(on, "--date"),
        _date(expires, "--expires"),
    )
    if json_:
        print_json(inv)
    else:
        err.print(f"block recorded; prepayment invoice {inv['number']} for {inv['total']}")


@retainer_app.command("deposit")
def retainer_deposit(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    amount: Annotated[str, typer.Option(help="The amount, e.g. 1000.00.")],
    on: Annotated[str | None, typer.Option("--date", help="Deposit date (default today).")] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Record money paid into the retainer, with its prepayment invoice; work on hold resumes."""
    apply_now(now)
    inv = deposit(db(), client, _decimal(amount, "--amount"), _date(on, "--date"))
    if json_:
        print_json(inv)
    else:
        err.print(f"deposit recorded; prepayment invoice {inv['number']} for {inv['total']}")

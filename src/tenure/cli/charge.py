"""`tenure charge add|list|void`: parts, materials and one-off charges, billed on the next monthly invoice."""

from __future__ import annotations

from typing import Annotated

import typer

from tenure.billing.charges import add_charge, list_charges, void_charge
from tenure.cli.common import JsonOpt, NowOpt, apply_now, db, err, out, print_json
from tenure.cli.work import _date, _decimal

app = typer.Typer(
    help="Charges: parts, materials and one-off charges, billed in arrears on the next monthly invoice.",
    no_args_is_help=True,
)


@app.command("add")
def add(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    description: Annotated[str, typer.Option(help="What is charged, as the invoice shows it.", show_default=False)],
    amount: Annotated[str, typer.Option(help="What the client pays in all, e.g. 240.00.", show_default=False)],
    cost: Annotated[str | None, typer.Option(help="What it cost the MSP (the owner's view).")] = None,
    on: Annotated[str | None, typer.Option("--date", help="The day of the charge (default today).")] = None,
    quantity: Annotated[str | None, typer.Option(help="How many (shown on the invoice with a unit price).")] = None,
    key: Annotated[str | None, typer.Option(help="Its key (default ch-YYYYMMDD-N).")] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Record a charge; the monthly invoice of the month after its date bills it, once."""
    apply_now(now)
    charge = add_charge(
        db(),
        client,
        description,
        _decimal(amount, "--amount"),
        None if cost is None else _decimal(cost, "--cost"),
        _date(on, "--date"),
        key,
        None if quantity is None else _decimal(quantity, "--quantity"),
    )
    if json_:
        print_json(charge)
    else:
        err.print(f"charge {charge['key']} recorded for {client}: {charge['amount']} on {charge['date']}")


@app.command("list")
def list_(
    client: Annotated[str | None, typer.Option("--client", help="Only this client's charges.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Charges by date, with the invoice that billed each."""
    charges = list_charges(db(), client)
    if json_:
        print_json(charges)
        return
    for c in charges:
        state = "voided" if c["voided"] else (f"billed on {c['invoice']}" if c["invoice"] else "to bill")
        out.print(f"{c['client']}  {c['key']}  {c['date']}  {c['amount']:>10}  {c['description']}  ({state})")


@app.command("void")
def void(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    key: Annotated[str, typer.Argument(help="The charge's key.", show_default=False)],
    reason: Annotated[str | None, typer.Option(help="Why it is withdrawn.")] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Withdraw a charge: never billed if it was not yet, else credited on the next invoice."""
    apply_now(now)
    charge = void_charge(db(), client, key, reason)
    if json_:
        print_json(charge)
    else:
        err.print(f"charge {key} of {client} voided")

"""`tenure client list|show`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tenure.cli.common import JsonOpt, NowOpt, db, out, print_json, today
from tenure.clients.service import list_clients, show_client
from tenure.money import fmt
from tenure.vocabulary import CLIENT_CLASSES

app = typer.Typer(help="Clients, their class, agreements and balances.", no_args_is_help=True)


def _hours(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


@app.command("list")
def list_(
    klass: Annotated[str | None, typer.Option("--class", help=f"Only this class: {', '.join(CLIENT_CLASSES)}.")] = None,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Every client with its class as of today (or --now)."""
    if klass is not None and klass not in CLIENT_CLASSES:
        raise typer.BadParameter(f"{klass!r} is not one of {', '.join(CLIENT_CLASSES)}", param_hint="--class")
    day = today(now)
    views = list_clients(db(), day, klass)
    if json_:
        print_json({"as_of": day.isoformat(), "clients": [v.as_json() for v in views]})
        return
    table = Table(title=f"Clients as of {day}")
    for column in ("key", "name", "class", "agreements", "devices", "block h:mm", "retainer"):
        table.add_column(column, justify="right" if column in ("devices", "block h:mm", "retainer") else "left")
    for v in views:
        kinds = ", ".join(a["kind"] for a in v.agreements) or "-"
        table.add_row(
            v.key, v.name, v.klass, kinds, str(len(v.devices)), _hours(v.block_balance_minutes), fmt(v.retainer_balance)
        )
    out.print(table)


@app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """One client: class, agreements, devices, and its prepaid balances explained entry by entry."""
    day = today(now)
    view, ledger = show_client(db(), key, day)
    if json_:
        print_json(view.as_json() | {"as_of": day.isoformat(), "ledger": ledger})
        return
    out.print(f"[bold]{view.name}[/bold] ({view.key}) — class [bold]{view.klass}[/bold] as of {day}")
    agreements = Table(title="Agreements")
    for column in ("key", "kind", "start", "end", "monthly fee", "included", "rates", "covers"):
        agreements.add_column(column)
    for a in view.agreements:
        rates = " / ".join(r for r in (a["overage_rate"], a["hourly_rate"]) if r) or "-"
        included = _hours(a["included_minutes"]) if a["included_minutes"] else "-"
        agreements.add_row(
            a["key"],
            a["kind"],
            a["start"],
            a["end"] or "-",
            a["monthly_fee"] or "-",
            included,
            rates,
            ", ".join(a["covers"]),
        )
    out.print(agreements)
    out.print(
        f"Devices: {len(view.devices)}  ·  block balance {_hours(view.block_balance_minutes)}  ·  "
        f"retainer {fmt(view.retainer_balance)}"
    )
    if ledger:
        table = Table(title="Prepaid ledger")
        for column in ("date", "account", "kind", "block", "change", "balance", "cause"):
            table.add_column(column)
        for e in ledger:
            if e["account"] == "block":
                change, balance = f"{e['minutes']:+d} min", _hours(e["balance_minutes"])
            else:
                change, balance = e["amount"], e["balance"]
            table.add_row(
                e["date"],
                e["account"],
                e["kind"],
                e["block"] or "",
                change,
                balance,
                e["cause_label"] or e["note"] or e["cause"] or "",
            )
        out.print(table)

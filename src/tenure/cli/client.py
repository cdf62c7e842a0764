"""`tenure client list|show|add|edit|archive|restore`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tenure.cli.common import JsonOpt, NowOpt, SetOpt, db, fields, new_table, out, print_json, show_object, today
from tenure.clients.service import list_clients, show_client
from tenure.money import fmt
from tenure.vocabulary import CLIENT_CLASSES

app = typer.Typer(help="Clients, their class, agreements and balances.", no_args_is_help=True)


def _changes() -> Any:
    """The module that changes clients, imported when one changes: it brings the book's validation, which
    a read such as `client list` does not need."""
    from tenure.clients import changes

    return changes


def _hours(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


@app.command("list")
def list_(
    klass: Annotated[str | None, typer.Option("--class", help=f"Only this class: {', '.join(CLIENT_CLASSES)}.")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="Archived clients too.")] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Every client with its class as of today (or --now); archived clients only with --archived."""
    if klass is not None and klass not in CLIENT_CLASSES:
        raise typer.BadParameter(f"{klass!r} is not one of {', '.join(CLIENT_CLASSES)}", param_hint="--class")
    day = today(now)
    views = list_clients(db(), day, klass, archived=archived)
    if json_:
        print_json({"as_of": day.isoformat(), "clients": [v.as_json() for v in views]})
        return
    table = new_table(title=f"Clients as of {day}")
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
    agreements = new_table(title="Agreements")
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
        table = new_table(title="Prepaid ledger")
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


Key = Annotated[str, typer.Argument(help="The client's key.", show_default=False)]
Name = Annotated[str | None, typer.Option("--name", help="The client's name.", show_default=False)]
Domains = Annotated[
    list[str] | None, typer.Option("--domain", help="An e-mail domain of the client (repeat for several).")
]
Notes = Annotated[str | None, typer.Option("--notes", help="Free text about the client.", show_default=False)]
Billable = Annotated[
    bool | None,
    typer.Option(
        "--billable-alerts/--no-billable-alerts", help="Alerts no agreement covers are quoted.", show_default=False
    ),
]
Forward = Annotated[
    bool | None,
    typer.Option(
        "--forward-alerts/--no-forward-alerts", help="Alerts no agreement covers go to the client.", show_default=False
    ),
]


@app.command("add")
def add(
    key: Key,
    name: Annotated[str, typer.Option("--name", help="The client's name.", show_default=False)],
    domain: Domains = None,
    notes: Notes = None,
    billable_alerts: Billable = None,
    forward_alerts: Forward = None,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Sign a new client (its agreements, contacts and devices follow with `agreement add`, `contact add`,
    `device add`, or all at once in a book)."""
    given = {"key": key, "name": name, "domains": domain or None, "notes": notes}
    body = fields(given | {"billable_alerts": billable_alerts, "forward_alerts": forward_alerts}, set_)
    show_object(_changes().add_client(db(), body), f"client {key}: added", json_)


@app.command("edit")
def edit(
    key: Key,
    name: Name = None,
    domain: Domains = None,
    notes: Notes = None,
    billable_alerts: Billable = None,
    forward_alerts: Forward = None,
    set_: SetOpt = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Refuse the change if the client changed since this version.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Change a client's own fields: only those given."""
    given = {"name": name, "domains": domain or None, "notes": notes}
    body = fields(given | {"billable_alerts": billable_alerts, "forward_alerts": forward_alerts}, set_)
    show_object(_changes().edit_client(db(), key, body, version), f"client {key}: changed", json_)


@app.command("archive")
def archive(
    key: Key,
    purge: Annotated[
        bool, typer.Option("--purge", help="Delete it instead: only a client with no history at all.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Archive a client: kept with all its history, left out of lists (`client list --archived` shows it)."""
    done = _changes().archive_client(db(), key, purge)
    show_object(done, f"client {key}: {done['outcome']}", json_)


@app.command("restore")
def restore(key: Key, json_: JsonOpt = False) -> None:
    """Bring an archived client back into the lists."""
    show_object(_changes().restore_client(db(), key), f"client {key}: restored", json_)

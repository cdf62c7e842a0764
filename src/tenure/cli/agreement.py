"""`tenure agreement add|edit|end`: a client's agreements, changed in place."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from tenure.book import objects
from tenure.cli.common import JsonOpt, SetOpt, db, fields, show_object, today

app = typer.Typer(help="A client's agreements: sign one, change its terms, end it.", no_args_is_help=True)

Key = Annotated[str, typer.Argument(help="The agreement's key.", show_default=False)]
Fee = Annotated[str | None, typer.Option("--monthly-fee", help="The recurring monthly fee (1200.00).")]
Included = Annotated[
    str | None, typer.Option("--included-hours", help="Hours included each month (managed).", show_default=False)
]
Overage = Annotated[str | None, typer.Option("--overage-rate", help="Rate of covered work past the included hours.")]
Hourly = Annotated[str | None, typer.Option("--hourly-rate", help="Rate of work the agreement does not cover.")]
BlockHours = Annotated[
    str | None, typer.Option("--block-hours-per-month", help="Monitoring: hours taken from a block instead of the fee.")
]
Covers = Annotated[list[str] | None, typer.Option("--covers", help="A service it covers (repeat for several).")]
Excludes = Annotated[list[str] | None, typer.Option("--excludes", help="A service it never covers (repeat).")]
End = Annotated[str | None, typer.Option("--end", help="Its last day (YYYY-MM-DD).", show_default=False)]


def _terms(
    fee: str | None,
    included: str | None,
    overage: str | None,
    hourly: str | None,
    block_hours: str | None,
    covers: list[str] | None,
    excludes: list[str] | None,
    end: str | None,
) -> dict[str, object]:
    return {
        "monthly_fee": fee,
        "included_hours": included,
        "overage_rate": overage,
        "hourly_rate": hourly,
        "block_hours_per_month": block_hours,
        "covers": covers or None,
        "excludes": excludes or None,
        "end": end,
    }


@app.command("add")
def add(
    client: Annotated[str, typer.Argument(help="The client's key.", show_default=False)],
    key: Key,
    kind: Annotated[str, typer.Option("--kind", help="managed, monitoring, call_before_service, retainer, adhoc.")],
    start: Annotated[str, typer.Option("--start", help="Its first day (YYYY-MM-DD).", show_default=False)],
    monthly_fee: Fee = None,
    included_hours: Included = None,
    overage_rate: Overage = None,
    hourly_rate: Hourly = None,
    block_hours_per_month: BlockHours = None,
    covers: Covers = None,
    excludes: Excludes = None,
    end: End = None,
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Sign an agreement for a client (a former client signing again becomes `agreement` again)."""
    terms = _terms(monthly_fee, included_hours, overage_rate, hourly_rate, block_hours_per_month, covers, excludes, end)
    body = fields({"key": key, "kind": kind, "start": start, **terms}, set_)
    show_object(objects.create_item(db(), client, "agreements", body), f"agreement {key}: added", json_)


@app.command("edit")
def edit(
    key: Key,
    monthly_fee: Fee = None,
    included_hours: Included = None,
    overage_rate: Overage = None,
    hourly_rate: Hourly = None,
    block_hours_per_month: BlockHours = None,
    covers: Covers = None,
    excludes: Excludes = None,
    end: End = None,
    effective: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="The first day of new money terms of an agreement already billed: it ends the day before, and "
            "a new agreement carries the new terms.",
            show_default=False,
        ),
    ] = None,
    set_: SetOpt = None,
    version: Annotated[str | None, typer.Option("--version", help="Refuse if it changed since this version.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Change an agreement's terms: only those given."""
    terms = _terms(monthly_fee, included_hours, overage_rate, hourly_rate, block_hours_per_month, covers, excludes, end)
    body = fields(terms, set_)
    on = _day(effective, "--from")
    client = objects.owner_of(db(), "agreements", key)
    done = objects.patch_item(db(), client, "agreements", key, body, version, on)
    show_object(done, f"agreement {done['key']}: {'new terms from ' + str(on) if on else 'changed'}", json_)


@app.command("end")
def end_(
    key: Key,
    on: Annotated[str | None, typer.Option("--on", help="Its last day (default: today).", show_default=False)] = None,
    json_: JsonOpt = False,
) -> None:
    """End an agreement (one never billed is deleted instead: it has no history to keep)."""
    client = objects.owner_of(db(), "agreements", key)
    done = objects.remove_item(db(), client, "agreements", key, _day(on, "--on") or today())
    show_object(done, f"agreement {key}: {done['outcome']}", json_)


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)", param_hint=option) from None

"""What every command shares: options, the database, JSON and table output, one-line errors."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Console

from tenure import clock
from tenure.db.engine import Database, get_database

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="Act as if it were this ISO date or date-time (also TENURE_NOW).", show_default=False),
]


def apply_now(now: str | None) -> None:
    if now:
        try:
            clock.set_now(now)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--now") from None


def today(now: str | None = None) -> date:
    apply_now(now)
    return clock.today()


def db() -> Database:
    return get_database()


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))

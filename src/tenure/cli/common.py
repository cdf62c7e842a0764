"""What every command shares: options, the database, JSON and table output, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from tenure import clock

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from tenure.db.engine import Database


class _Console:
    """rich's Console, made when a command first prints through it: a command that prints JSON (through
    typer.echo) never loads rich, a tenth of its start."""

    def __init__(self, **options: Any):
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out: Any = _Console(soft_wrap=True)
err: Any = _Console(stderr=True, soft_wrap=True)


def new_table(title: str | None = None, **options: Any) -> Table:
    """A rich table (rich loaded now, for a command that draws one: see _Console)."""
    from rich.table import Table

    return Table(title=title, **options)

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
    """The database, opened (the ORM imported) when a command needs it, not at start.

    A command's start-up makes a few hundred thousand objects that live as long as the process (modules,
    mapped classes, tables): the cyclic collector would walk them again and again while they are made and
    find nothing to free, a sixth of a read's time. It is paused while they are made (here, while the
    command line's libraries and a command's module are imported) and resumes for the command's work."""
    from tenure.bulk import collector_paused

    with collector_paused():
        from tenure.db.engine import get_database

        return get_database()


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Any other field of the object's shape in the book, as FIELD=VALUE (VALUE read as JSON when it "
        'is JSON: --set covers=\'["monitoring"]\'). Repeat it for several fields.',
        show_default=False,
    ),
]


def fields(given: dict[str, Any], sets: list[str] | None = None) -> dict[str, Any]:
    """The body of a change: the options given (None = not given) and every --set FIELD=VALUE."""
    body = {name: value for name, value in given.items() if value is not None}
    for item in sets or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{item!r} is not FIELD=VALUE", param_hint="--set")
        try:
            body[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            body[name.strip()] = text
    return body


def show_object(document: dict[str, Any], title: str, json_: bool) -> None:
    """A changed object: as JSON, or its fields one per line."""
    if json_:
        print_json(document)
        return
    out.print(f"[bold]{title}[/bold]")
    for name, value in document.items():
        if value not in (None, [], {}):
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            out.print(f"  {name}: {shown}")


# ------------------------------------------------------------------------------------ lists in pages

LIST_LIMIT = 500
LimitOpt = Annotated[
    int, typer.Option("--limit", min=1, help="Print at most this many rows (more exist: said on stderr).")
]
OffsetOpt = Annotated[int, typer.Option("--offset", min=0, help="Skip this many rows first.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Print every row (no --limit).")]
Row = TypeVar("Row")


def paged(
    fetch: Callable[[int | None, int], Sequence[Row]], limit: int, offset: int, all_: bool, what: str
) -> list[Row]:
    """The rows of one page of a list command, and a line on stderr when more rows exist than it prints.

    `fetch(limit, offset)` returns rows in a stable order (`limit` None: all of them from `offset`). One
    row more than asked is fetched, so knowing that more exist costs no count over a large table.
    """
    if all_:
        return list(fetch(None, offset))
    rows = list(fetch(limit + 1, offset))
    if len(rows) > limit:
        rows = rows[:limit]
        err.print(
            f"{what}: printed {limit} (rows {offset + 1}–{offset + limit}); more exist: "
            f"--offset {offset + limit} for the next ones, or --all",
            markup=False,
            highlight=False,
        )
    return rows

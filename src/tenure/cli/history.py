"""`tenure changes OBJECT KEY`: an object's change log, who did what and when (the API's `/changes`, the
History tab of a client's page), over the same service function."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tenure.book.history import OBJECTS, history
from tenure.cli.common import LIST_LIMIT, AllOpt, JsonOpt, LimitOpt, OffsetOpt, db, new_table, out, paged, print_json


def changes(
    what: Annotated[str, typer.Argument(metavar="OBJECT", help=f"One of: {', '.join(OBJECTS)}.")],
    key: Annotated[str, typer.Argument(help="Its key (a number for tickets, contacts, time entries, …).")],
    limit: LimitOpt = LIST_LIMIT,
    offset: OffsetOpt = 0,
    all_: AllOpt = False,
    json_: JsonOpt = False,
) -> None:
    """What happened to an object, newest first: who, when, and each field before and after.

    A client's log holds everything it owns too (agreements, devices, tickets, …)."""
    rows = paged(lambda n, skip: history(db(), what, key, n, skip)["changes"], limit, offset, all_, "changes")
    if json_:
        print_json({"object": what, "key": key, "changes": rows})
        return
    table = new_table(title=f"Changes to {what} {key}")
    for column in ("at", "actor", "action", "object", "what changed"):
        table.add_column(column)
    for c in rows:
        table.add_row(c["at"][:19], c["actor"], c["action"], f"{c['object']} {c['label']}", _what(c))
    out.print(table)


def _what(change: dict[str, Any]) -> str:
    """An update's fields, each `field: before → after`; a creation or deletion says so."""
    if change["action"] == "update":
        return "\n".join(f"{field}: {_shown(was)} → {_shown(now)}" for field, (was, now) in change["changed"].items())
    return {"create": "created", "delete": "deleted"}.get(change["action"], _shown(change["after"]))


def _shown(value: Any) -> str:
    return "-" if value is None else value if isinstance(value, str) else json.dumps(value)

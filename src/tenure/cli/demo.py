"""`tenure demo`."""

from __future__ import annotations

from tenure.book.demo import load_demo
from tenure.cli.common import JsonOpt, db, err, print_json


def demo(json_: JsonOpt = False) -> None:
    """Load a realistic demo MSP: every agreement kind and client class. Running it twice changes nothing."""
    summary = load_demo(db())
    if json_:
        print_json(summary.as_json())
        return
    created = sum(summary.created.values())
    err.print(
        f"demo loaded: {created} records created, {sum(summary.updated.values())} updated, "
        f"{sum(summary.unchanged.values())} unchanged. Try `tenure client list`."
    )

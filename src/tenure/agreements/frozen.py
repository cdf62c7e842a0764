"""The portions an invoice froze, as stored in `frozen_allocation.portions`: column by column.

A first billing run freezes a million portions. Written one JSON list per portion (the form before
migration 0016) they were ~90 MB for 5,000 clients and a tenth of the run went to encoding them one by one.
Column by column, a value repeated down a column (the day, the layer, the agreement, the rate, the amount)
is written once and referred to by its position, and the columns are made and read by whole lists:

    {"key": ["t001", "t002"], "minutes": [90, 30],
     "date": [["2026-10-03", "2026-10-11"], [0, 1]], "layer": [["billable"]], ...}

A column whose values are all one is its single value alone (`[["billable"]]`). Equal amounts are kept
once whatever their written scale ("225.0" and "225.00" are the same money: invoices round once, later).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from tenure.agreements.rules import Portion

# the dictionary-coded columns: name, how a value is written, how it is read back (None stays None)
_COLUMNS: tuple[tuple[str, Callable[[Any], Any], Callable[[Any], Any]], ...] = (
    ("date", lru_cache(maxsize=4096)(date.isoformat), date.fromisoformat),
    ("layer", str, str),
    ("block", str, str),
    ("agreement", str, str),
    ("rate", str, Decimal),
    ("line_kind", str, str),
    ("amount", str, Decimal),
)


def encode_portions(portions: Sequence[Portion]) -> dict[str, Any] | list[Any]:
    """The stored form of a frozen row's portions (an empty list when there are none)."""
    if not portions:
        return []
    key, day, layer, minutes, block, agreement, rate, line_kind, amount = zip(*portions, strict=True)
    stored: dict[str, Any] = {"key": list(key), "minutes": list(minutes)}
    for (name, write, _), column in zip(_COLUMNS, (day, layer, block, agreement, rate, line_kind, amount), strict=True):
        first = column[0]
        if column.count(first) == len(column):  # one value all the way down (compared by identity first, in C)
            stored[name] = [[None if first is None else write(first)]]
            continue
        # the distinct values in order of first use, each by its position (a str, a date and a Decimal keep
        # their hash once worked out, and the allocation shares a few objects down a column)
        position = {value: i for i, value in enumerate(dict.fromkeys(column))}
        stored[name] = [[None if v is None else write(v) for v in position], list(map(position.__getitem__, column))]
    return stored


def portions_json(portions: Sequence[Portion]) -> str:
    """`encode_portions` as the JSON text stored ("[]" when there are none)."""
    return orjson.dumps(encode_portions(portions)).decode()


def decode_portions(stored: dict[str, Any] | list[Any] | None) -> list[Portion]:
    """The portions of a stored row: each distinct value parsed once, rows made by whole columns."""
    if not stored:
        return []
    if isinstance(stored, list):  # one list per portion: a row written before migration 0016
        return [_decode_one(row) for row in stored]
    n = len(stored["key"])
    columns: list[list[Any]] = []
    for name, _, read in _COLUMNS:
        shown, *index = stored[name]
        values = [None if v is None else read(v) for v in shown]
        columns.append(list(map(values.__getitem__, index[0])) if index else values * n)
    day, layer, block, agreement, rate, line_kind, amount = columns
    return list(map(Portion, stored["key"], day, layer, stored["minutes"], block, agreement, rate, line_kind, amount))


def frozen_keys(stored: dict[str, Any] | list[Any] | None) -> list[str]:
    """The work keys of a stored row's portions, without decoding the rest."""
    if not stored:
        return []
    if isinstance(stored, list):
        return [row[0] for row in stored]
    return list(stored["key"])


def _decode_one(row: list[Any]) -> Portion:
    key, day, layer, minutes, block, agreement, rate, line_kind, amount = row
    return Portion(
        key,
        date.fromisoformat(day),
        layer,
        minutes,
        block,
        agreement,
        None if rate is None else Decimal(rate),
        line_kind,
        Decimal(amount),
    )

"""A page of a list and its total: what every list (pages, the REST API, the command line) returns.

Counting a million alerts costs a scan, so a total is exact up to `COUNT_CAP` and otherwise says
`total_exact: false` (`count(..., exact=True)` asks for the real one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

COUNT_CAP = 10_000


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int
    total_exact: bool
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        more = self.offset + len(self.items) < self.total or not self.total_exact
        return self.offset + len(self.items) if more and len(self.items) == self.limit else None

    def meta(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "total_exact": self.total_exact,
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": self.next_offset,
        }


def count(s: Session, query: Select[Any], exact: bool = False) -> tuple[int, bool]:
    """Rows `query` would return: exactly, or up to COUNT_CAP (then flagged as not exact)."""
    inner = query.order_by(None)
    if not exact:
        inner = inner.limit(COUNT_CAP + 1)
    n = int(s.scalar(select(func.count()).select_from(inner.subquery())) or 0)
    if not exact and n > COUNT_CAP:
        return COUNT_CAP, False
    return n, True

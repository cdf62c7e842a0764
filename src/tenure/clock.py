"""The one "now" of the product.

Every reading of the clock goes through `now()`, so `--now` / `TENURE_NOW` can move a whole command to
another moment: rehearse a month-end, or run a two-hour wait in no time in a test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime

_override: ContextVar[datetime | None] = ContextVar("tenure_now", default=None)


def parse_moment(text: str) -> datetime:
    """An ISO date or date-time; a naive value is taken as UTC."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO date or date-time (e.g. 2026-11-01T09:00:00Z)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def set_now(moment: datetime | str | None) -> None:
    if isinstance(moment, str):
        moment = parse_moment(moment)
    _override.set(moment)


@contextmanager
def held(moment: datetime) -> Iterator[None]:
    """The clock reads `moment` until the block ends (every part of one job at the job's moment)."""
    token = _override.set(moment)
    try:
        yield
    finally:
        _override.reset(token)


def now() -> datetime:
    moment = _override.get()
    if moment is not None:
        return moment
    env = os.environ.get("TENURE_NOW")
    if env:
        return parse_moment(env)
    return datetime.now(UTC)


def today() -> date:
    return now().date()

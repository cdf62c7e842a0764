"""Helpers for the bulk paths (a billing run, a report over a whole MSP, an intake batch)."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small acyclic values are made (work, portions,
    Decimals): it would walk them again and again for nothing (a third of the time of a whole MSP's run).
    Reference counting still frees them; the collector resumes as it was.

    Every object made meanwhile waits in the collector's youngest generation, and its first collection after
    the pause walks whichever of them are still alive (a billing run's million: half a second). So a function
    whose objects are temporary wears it as a decorator, `@collector_paused()`: its frame, and what only the
    frame held, is freed before the collector resumes. A `with` block inside the function resumes it first."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def collector_running() -> Iterator[None]:
    """The cyclic collector running for a while, even inside `collector_paused` (restored after): for work
    whose objects do form cycles and are many, such as a migration of a whole database opened by a command
    (`tenure.cli.common.db` pauses the collector while it opens the database)."""
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if not was_enabled:
            gc.disable()


IN_LIST = 900  # values per IN (...) list: under SQLite's default limit of bound parameters, fine on PostgreSQL


def chunks(values: Sequence[T], size: int = IN_LIST) -> list[Sequence[T]]:
    """`values` in slices of `size`, for bulk queries that filter with IN (...)."""
    return [values[start : start + size] for start in range(0, len(values), size)]

"""Helpers for the bulk paths (a billing run, a report over a whole MSP, an intake batch)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small acyclic values are made (work, portions,
    Decimals): it would walk them again and again for nothing (a third of the time of a whole MSP's run).
    Reference counting still frees them; the collector resumes as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

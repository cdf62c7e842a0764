"""The table of benchmarks: every module of bench/ registers its functions here with @bench."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.generate import Scale
from tenure.db.engine import Database

Bench = Callable[[Database, Scale], dict[str, Any]]
BENCHES: dict[str, Bench] = {}


def bench(fn: Bench) -> Bench:
    BENCHES[fn.__name__] = fn
    return fn


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, float]:
    """(median, p95) seconds over `repeat` runs after one warm-up."""
    fn()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]

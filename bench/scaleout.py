"""Intake scaled out: a stored burst processed by 1, 2 and 4 worker processes on PostgreSQL (what
`tenure worker --processes N` runs), printed with the machine's core count.

Registered into bench.registry's table when bench.run loads its plugins. Each run works on a scratch copy of
the generated MSP (`bench.run._copy`) holding the same burst, stored and waiting as after an Alertmanager
storm; the processes are started and connected first, then let go together, and the clock stops when the
last one finds nothing waiting. Measures only: each figure is printed beside its limit, nothing is asserted.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

from sqlalchemy import func, select

import bench.run as run
from bench.generate import Scale
from bench.registry import bench
from tenure.db.engine import Database
from tenure.intake import service as intake
from tenure.intake.models import RawPayload

BURST = 40_000  # eight 5,000-payload batches: work for four processes
PROCESSES = (1, 2, 4)
LIMIT = 10_000  # alerts processed per second (issue 21), on PostgreSQL


def _drain(url: str, ready: Any, go: Any, done: Any) -> None:
    """One worker process: connected and warmed up, it waits for `go`, then processes until nothing waits."""
    from tenure.db.engine import get_database

    db = get_database(url)
    with db.reader() as s:  # a connection open and the mappers configured before the clock starts
        s.scalar(select(func.count()).select_from(RawPayload).where(RawPayload.state == "stored"))
    ready.release()
    go.wait()
    done.put(intake.process_waiting(db))


def _processed_per_second(db: Database, scale: Scale, processes: int) -> dict[str, Any]:
    target = run._copy(db, f"scale{processes}")
    bodies = run._events(scale, BURST, seed=13)
    for start in range(0, BURST, intake.BATCH):
        intake.receive_many(target, "event", bodies[start : start + intake.BATCH])
    target.engine.dispose()
    context = multiprocessing.get_context("spawn")
    ready, go, done = context.Semaphore(0), context.Event(), context.Queue()
    children = [context.Process(target=_drain, args=(target.url, ready, go, done)) for _ in range(processes)]
    for child in children:
        child.start()
    for _ in children:
        ready.acquire()
    began = time.perf_counter()
    go.set()
    counts = [done.get(timeout=600) for _ in children]
    seconds = time.perf_counter() - began
    for child in children:
        child.join(timeout=60)
    with target.reader() as s:
        waiting = s.scalar(select(func.count()).select_from(RawPayload).where(RawPayload.state == "stored"))
    target.engine.dispose()
    run.drop_copies(db, f"scale{processes}")
    return {
        "processes": processes,
        "payloads": BURST,
        "processed": sum(counts),
        "processed_per_process": counts,
        "left_waiting": waiting,
        "seconds": round(seconds, 2),
        "alerts_per_second": round(BURST / seconds),
    }


@bench
def intake_scale_out(db: Database, scale: Scale) -> dict[str, Any]:
    """A stored burst processed by 1, 2 and 4 worker processes (PostgreSQL; SQLite has one writer)."""
    if db.is_sqlite:
        return {"skipped": "PostgreSQL only: SQLite has one writer at a time (tenure worker --processes 1)"}
    runs = [_processed_per_second(db, scale, n) for n in PROCESSES]
    best = max(r["alerts_per_second"] for r in runs)
    one = runs[0]["alerts_per_second"]
    return {
        "cpu_count": os.cpu_count(),
        "runs": runs,
        "speedup_over_one_process": {str(r["processes"]): round(r["alerts_per_second"] / one, 2) for r in runs},
        "best_alerts_per_second": best,
        "limit_alerts_per_second": LIMIT,
        "every_payload_once": all(r["processed"] == BURST and r["left_waiting"] == 0 for r in runs),
        "within_limit": best >= LIMIT and all(r["processed"] == BURST for r in runs),
    }

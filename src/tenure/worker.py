"""The worker: everything that happens without a person asking. `tenure worker` runs it alone (several
processes on PostgreSQL share the work); `tenure serve` runs it in a thread in the embedded default."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from tenure.agreements import terms
from tenure.db.engine import Database
from tenure.intake import missed
from tenure.intake import service as intake
from tenure.maintenance import service as maintenance
from tenure.notices import outbox
from tenure.offboarding import service as offboarding

log = logging.getLogger("tenure.worker")

# each job: (name, function, every N seconds); a job returns how much it did
Job = tuple[str, Callable[[Database], Any], float]
JOBS: list[Job] = [
    ("intake", intake.process_waiting, 0.2),  # every waiting payload, a batch at a time
    ("missed_backups", lambda db: len(missed.sweep(db)), 60.0),
    ("offboarding", lambda db: offboarding.work(db), 5.0),  # due offboarding steps, under leases
    ("outbox", outbox.worker_job, 10.0),  # mail due now, over SMTP (waits without TENURE_SMTP_URL)
    ("maintenance", maintenance.worker_job, 300.0),  # maintenance tickets and monthly notices
    ("terms", terms.worker_job, 300.0),  # notices to the owner before agreement terms end
]


def run_once(db: Database) -> dict[str, Any]:
    """Every job once, now: what `tenure worker --once` (cron, tests) does."""
    done: dict[str, Any] = {}
    for name, job, _ in JOBS:
        done[name] = job(db)
    return done


def run_forever(db: Database, stop: threading.Event) -> None:
    last: dict[str, float] = {}
    while not stop.is_set():
        now = time.monotonic()
        for name, job, every in JOBS:
            if now - last.get(name, 0.0) >= every:
                last[name] = now
                try:
                    job(db)
                except Exception:  # one failing job must not stop the others; it is retried next round
                    log.exception("worker job %s failed", name)
        stop.wait(0.2)

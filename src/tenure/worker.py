"""The worker: everything that happens without a person asking. `tenure worker` runs it alone (several
processes on PostgreSQL share the work); `tenure serve` runs it in a thread in the embedded default."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from tenure.agreements import terms
from tenure.billing import mailing
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
    ("invoice_reminders", mailing.send_reminders, 300.0),  # overdue invoices' reminders, before the outbox
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


def run_forever(db: Database, stop: threading.Event, jobs: list[Job] | None = None) -> None:
    """The jobs, each every so often, until `stop` is set. Intake runs in a lane of its own, the other jobs in a
    thread beside it: a storm's payloads are decided within a pause of the intake loop however long another job
    takes (a 5,000-client MSP's maintenance round takes seconds; the outbox waits on SMTP servers)."""
    jobs = JOBS if jobs is None else jobs
    intake_lane = [job for job in jobs if job[0] == "intake"]
    others = [job for job in jobs if job[0] != "intake"]
    if intake_lane and others:
        threading.Thread(target=_run_lane, args=(db, stop, others), name="tenure-worker-jobs", daemon=True).start()
    try:
        _run_lane(db, stop, intake_lane or others)
    finally:  # Ctrl-C or an error here: the lane beside stops at its next pause too
        stop.set()


def _run_lane(db: Database, stop: threading.Event, jobs: list[Job]) -> None:
    last: dict[str, float] = {}
    while not stop.is_set():
        now = time.monotonic()
        for name, job, every in jobs:
            if now - last.get(name, 0.0) >= every:
                last[name] = now
                try:
                    job(db)
                except Exception:  # one failing job must not stop the others; it is retried next round
                    log.exception("worker job %s failed", name)
        stop.wait(0.2)


# ------------------------------------------------------------------------------- several processes
# `tenure worker --processes N` (PostgreSQL): N processes each claim the oldest waiting batch of intake with
# SKIP LOCKED, so a burst is parsed on every core; the first process also runs the other jobs (they are
# timed, not a backlog). Each process has its own engine: a connection pool cannot cross a process.


def intake_only(db: Database) -> int:
    """One round of intake alone: what the second and later processes do."""
    return intake.process_waiting(db)


def _child(url: str, first: bool, now: str | None, once: bool) -> dict[str, Any]:
    from tenure import clock
    from tenure.db.engine import get_database

    if now:
        clock.set_now(now)
    db = get_database(url)
    if once:
        return run_once(db) if first else {"intake": intake_only(db)}
    stop = threading.Event()
    try:
        run_forever(db, stop, None if first else [("intake", intake_only, 0.2)])
    except KeyboardInterrupt:
        stop.set()
    return {}


def run_processes(db: Database, processes: int, once: bool, now: str | None = None) -> dict[str, Any]:
    """The worker in `processes` processes. `once`: every job once in the first, intake until nothing waits in
    all of them; what they did, summed per job. Otherwise they run until this process is stopped (Ctrl-C or
    SIGTERM stops them all)."""
    import multiprocessing
    import signal

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no engine or thread copied over
    args = [(db.url, n == 0, now, once) for n in range(processes)]
    if once:
        with context.Pool(processes) as pool:
            results = pool.starmap(_child, args)
        return {**results[0], "intake": sum(result["intake"] for result in results)}
    children = [context.Process(target=_child, args=a, name=f"tenure-worker-{n}") for n, a in enumerate(args)]
    for child in children:
        child.start()

    def stop_all(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_all)
    try:
        while all(child.is_alive() for child in children):
            time.sleep(0.5)
        log.error("a worker process ended (exit code %s): stopping the others", [c.exitcode for c in children])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: a batch in flight is rolled back and claimed again later
        for child in children:
            child.join(timeout=30)
    return {}

"""Benchmarks of offboarding: the plan of a 10,000-device client, and a run applied against the fake Tactical
RMM (tests/fakes/tacticalrmm.py, a real HTTP server) with 20 ms latency per call.

Registered into bench.registry's table when bench.run loads its plugins. Measures only: each figure is
printed beside its limit, nothing is asserted.
"""

from __future__ import annotations

import http.server
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.generate import Scale
from bench.registry import bench, timed
from tenure import clock
from tenure.db.engine import Database
from tenure.offboarding import rules

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests/ (the fake Tactical RMM, the test book) is not an installed package
    sys.path.insert(0, str(ROOT))

PLAN_DEVICES = 10_000
APPLY_DEVICES = 50
LATENCY = 0.020  # seconds per fake Tactical RMM call
CONCURRENCY = 1  # `offboard apply` runs one step at a time (Runner.run_until_idle, limit 1, one worker)
T0 = datetime(2026, 12, 15, 15, 0, tzinfo=UTC)
ANSWERS: dict[str, Any] = {
    "end_of_service": "2026-12-15",
    "reason": "client_cancelled",
    "access": "full",
    "agent_deployment": "manual",
    "moving_to": "other_msp",
    "new_contact": {"name": "Ada Stone", "email": "ada@incoming-msp.example"},
    # the session with the client that starts the run: the owner's approval (p3.approval) waits for it
    "closeout": {"date": "2026-12-01", "attended": ["Ada Stone", "olive"], "notes": "Hand-over agreed"},
}


def _inventory(devices: int) -> rules.Inventory:
    return rules.Inventory(
        client="big",
        client_name="Big Co",
        contacts=(rules.Contact("Jo Smith", "jo@big.example", ("primary", "admin")),),
        devices=tuple(
            rules.Device(
                f"big-{i:05d}",
                f"BIG-{i:05d}",
                "server" if i % 50 == 0 else "workstation",
                ("patching", "remote_control", "antivirus", "automated_tasks"),
                ("disk_space", "cpu", "memory"),
                "tacticalrmm",
                f"agent-{i:05d}-" + "x" * 24,
            )
            for i in range(devices)
        ),
        accounts=(
            rules.VendorAccount("big-rmm", "rmm", "tacticalrmm", "7"),
            rules.VendorAccount("big-siem", "siem", "blumira", "b-1", {"edition": "SIEM Pro", "sensors": 2}),
            rules.VendorAccount("big-backup", "backup", "restic", "r-1"),
        ),
        backup_jobs=tuple(rules.BackupJob(f"job-{i:03d}", f"big-{i * 50:05d}", "restic", f"j{i}") for i in range(200)),
        agreements=(rules.Agreement("big-managed", "managed"),),
        open_tickets=3,
    )


@bench
def offboarding_plan(db: Database, scale: Scale) -> dict[str, Any]:
    """`offboarding.rules.plan` for a client with 10,000 devices (the Inventory built in memory)."""
    inventory = _inventory(PLAN_DEVICES)
    answers = rules.parse_answers(ANSWERS)
    median, p95 = timed(lambda: rules.plan(inventory, answers), repeat=3)
    steps = len(rules.plan(inventory, answers).steps)
    return {
        "devices": PLAN_DEVICES,
        "steps": steps,
        "seconds_median": round(median, 3),
        "seconds_p95": round(p95, 3),
        "limit_seconds": 2.0,
        "within_limit": p95 <= 2.0,
    }


def _book(url: str, agent_ids: list[str]) -> dict[str, Any]:
    from tests.books import small

    book = small()
    acme = book["clients"][0]
    acme["devices"] = [
        {
            "key": f"acme-d{i:03d}",
            "hostname": f"ACME-D{i:03d}",
            "site": "main",
            "role": "workstation",
            "os": "Windows 11",
            "features": ["patching", "automated_tasks"],
            "checks": ["disk_space", "cpu"],
            "rmm": {"vendor": "tacticalrmm", "id": agent},
        }
        for i, agent in enumerate(agent_ids)
    ]
    acme["accounts"] = [{"key": "acme-rmm", "kind": "rmm", "vendor": "tacticalrmm", "external_id": "7", "url": url}]
    acme["backup_jobs"] = []
    return book


@bench
def offboarding_apply(db: Database, scale: Scale) -> dict[str, Any]:
    """A run for a 50-device client applied against the fake Tactical RMM (20 ms per call): the snapshot,
    then (approved) every feature and check off, then (two hours later on the clock) every agent uninstalled
    and the client removed. Its own SQLite database: the generated one is left alone."""
    agent_ids = [f"bench{i:03d}" + "Q" * 32 for i in range(APPLY_DEVICES)]
    # The fake answers with two writes (headers, then body); with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms a call on Linux), which a real Tactical behind nginx does not add: switched off here,
    # for this benchmark's server only (restored after).
    nagle = http.server.BaseHTTPRequestHandler.disable_nagle_algorithm
    http.server.BaseHTTPRequestHandler.disable_nagle_algorithm = True
    try:
        return _apply(agent_ids)
    finally:
        http.server.BaseHTTPRequestHandler.disable_nagle_algorithm = nagle


def _apply(agent_ids: list[str]) -> dict[str, Any]:
    from tenure.book.service import import_book
    from tenure.connectors.registry import ConnectorSettings
    from tenure.offboarding import service
    from tenure.runner import RetryPolicy
    from tests.fakes.tacticalrmm import running

    with tempfile.TemporaryDirectory() as tmp, running(latency=LATENCY) as fake:
        fake.add_client(7, "Acme Dental")
        for i, agent in enumerate(agent_ids):
            fake.add_agent(agent, f"ACME-D{i:03d}", 7, checks=["diskspace", "cpuload"], tasks=["Nightly cleanup"])
        own = Database(f"sqlite:///{Path(tmp) / 'apply.db'}")
        own.migrate()
        import_book(own, _book(fake.url, agent_ids))
        options = service.Options(
            connectors=ConnectorSettings(api_keys={"tacticalrmm": fake.api_key}, backoff=0.01),
            policy=RetryPolicy(),
            worker="bench",
        )
        seconds, ran = 0.0, 0
        try:
            for moment, approve in ((T0, False), (T0, True), (T0 + timedelta(hours=2, minutes=1), False)):
                clock.set_now(moment)
                if approve:
                    service.answer(own, "approve", "acme", "p3.approval", "benchmark")
                began = time.perf_counter()
                status = service.apply(own, "acme", ANSWERS, options=options)
                seconds += time.perf_counter() - began
                ran += status["ran"]
        finally:
            clock.set_now(None)
            own.engine.dispose()
        calls = sum(fake.requests.values())
    limit = 1.5 * calls * LATENCY / CONCURRENCY
    return {
        "devices": APPLY_DEVICES,
        "steps_run": ran,
        "run_state": status["state"],
        "calls": calls,
        "latency_seconds": LATENCY,
        "concurrency": CONCURRENCY,
        "seconds": round(seconds, 2),
        "seconds_in_calls_at_least": round(calls * LATENCY, 2),
        "limit_seconds": round(limit, 2),  # 1.5 × calls × latency / concurrency
        "within_limit": seconds <= limit,
        "nagle_off_on_fake": True,
    }


BULK_DEVICES = 2_000


def _bulk_book() -> dict[str, Any]:
    """A client with BULK_DEVICES devices on an RMM Tenure cannot drive: every phase 3 step is a person's."""
    from tests.books import small

    book = small()
    acme = book["clients"][0]
    acme["devices"] = [
        {"key": f"acme-pc{i:04d}", "hostname": f"ACME-PC{i:04d}", "site": "main", "role": "workstation",
         "os": "Windows 11", "features": ["patching", "antivirus", "remote_control"], "checks": ["disk_space", "cpu"],
         "rmm": {"vendor": "nsight", "id": f"agent-{i:04d}"}}
        for i in range(BULK_DEVICES)
    ]  # fmt: skip
    acme["accounts"] = [{"key": "acme-rmm", "kind": "rmm", "vendor": "nsight", "external_id": "7"}]
    acme["backup_jobs"] = []
    return book


@bench
def offboarding_bulk_tick(db: Database, scale: Scale) -> dict[str, Any]:
    """Every step of phase 3 of a 2,000-device run ticked at once (`tenure offboard done acme --phase 3`, the
    run page's "tick the phase"): one note, each step recorded, the run moved on. Its own database (SQLite
    beside the generated one, or the PostgreSQL one given, emptied first)."""
    from tenure.book.service import import_book
    from tenure.offboarding import service

    answers = ANSWERS | {"moving_to": "own_it", "new_contact": {"name": "Jo Smith", "email": "jo@acme.example"}}
    answers |= {"closeout": {"date": "2026-12-01", "attended": ["Jo Smith"], "notes": "agreed"}}
    from sqlalchemy.engine import make_url

    from bench.run import _recreate_postgresql, drop_copies

    with tempfile.TemporaryDirectory() as tmp:
        if db.is_sqlite:
            own = Database(f"sqlite:///{Path(tmp) / 'bulk.db'}")
        else:  # an empty database beside the generated one, dropped once measured
            url = make_url(db.url)
            _recreate_postgresql(db.url, f"{url.database}_bulk")
            own = Database(url.set(database=f"{url.database}_bulk").render_as_string(hide_password=False))
        own.migrate()
        try:
            import_book(own, _bulk_book())
            clock.set_now(T0 - timedelta(days=10))
            service.apply(own, "acme", answers)
            service.answer(own, "approve", "acme", "p3.approval", "benchmark")
            clock.set_now(T0)
            began = time.perf_counter()  # the worker's part: the due steps, one transaction each
            applied = service.apply(own, "acme", None)
            apply_seconds = time.perf_counter() - began
            run = applied["run"]
            began = time.perf_counter()
            done = service.bulk(own, "done", run, service.Selection(phase=3), "done in the N-sight dashboard")
            seconds = time.perf_counter() - began
        finally:
            clock.set_now(None)
            own.engine.dispose()
            if not db.is_sqlite:
                drop_copies(db, "bulk")
    return {
        "devices": BULK_DEVICES,
        "steps_ticked": done["count"],
        "worker_steps": applied["ran"],  # before the tick: each claimed, run and recorded on its own
        "worker_steps_per_second": round(applied["ran"] / apply_seconds) if apply_seconds else None,
        "left": len(done["left"]),
        "seconds": round(seconds, 3),
        "limit_seconds": 2.0,
        "within_limit": seconds <= 2.0,
    }

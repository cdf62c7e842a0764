"""Benchmarks of the owner's view: profitability of every client over a year, and one client's fit.

Registered into bench.registry's table when bench.run loads its plugins; each figure is printed beside
its goal and, for profitability, beside a plain SQL aggregate over the same time entries, measured in the
same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import event, func, select, text

from bench.generate import Scale
from bench.registry import BENCHES, timed
from tenure import clock
from tenure.agreements.models import TimeEntry
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.reports.service import fit_report, profitability_report

COVERS = ["monitoring", "backup_monitoring", "patching", "antivirus", "maintenance", "remote_support", "incident"]
OFFERS: list[dict[str, Any]] = [
    {"key": "essentials", "kind": "managed", "monthly_fee": "300.00", "included_hours": 2, "overage_rate": "120.00",
     "hourly_rate": "120.00", "covers": COVERS, "excludes": ["malware_cleanup"]},
    {"key": "standard", "kind": "managed", "monthly_fee": "800.00", "included_hours": 8, "overage_rate": "115.00",
     "hourly_rate": "115.00", "covers": COVERS, "excludes": ["malware_cleanup"]},
    {"key": "premium", "kind": "managed", "monthly_fee": "2000.00", "included_hours": 25, "overage_rate": "110.00",
     "hourly_rate": "110.00", "covers": [*COVERS, "onsite"], "excludes": []},
    {"key": "watch", "kind": "monitoring", "monthly_fee": "100.00", "block_hours_per_month": 2,
     "covers": ["monitoring", "patching"]},
    {"key": "call-first", "kind": "call_before_service", "monthly_fee": "150.00", "hourly_rate": "140.00",
     "covers": ["monitoring", "maintenance"]},
    {"key": "retainer", "kind": "retainer", "hourly_rate": "125.00"},
    {"key": "adhoc", "kind": "adhoc", "hourly_rate": "150.00"},
    {"key": "block-10", "block_hours": 10, "price": "1300.00"},
    {"key": "block-20", "block_hours": 20, "price": "2400.00"},
    {"key": "block-50", "block_hours": 50, "price": "5750.00"},
]  # fmt: skip


def _window(scale: Scale) -> tuple[str, str]:
    last = scale.end.replace(day=1)
    first = last - relativedelta(months=scale.months - 1)
    return first.strftime("%Y-%m"), last.strftime("%Y-%m")


def bench(fn: Callable[[Database, Scale], dict[str, Any]]) -> Callable[[Database, Scale], dict[str, Any]]:
    """bench.run's `@bench`: registers into its table. Not imported by name, because the `import bench.owner`
    at the end of bench/run.py rebinds bench.run's name `bench` to the package when this module is imported
    first (`from bench.run import bench` would then give the package)."""
    BENCHES[fn.__name__] = fn
    return fn


class _Queries:
    """Counts the statements a block sends through SQLAlchemy (the driver's own cursor is not counted)."""

    def __init__(self, db: Database) -> None:
        self.engine, self.count = db.engine, 0

    def _hit(self, *args: Any) -> None:
        self.count += 1

    def __enter__(self) -> _Queries:
        event.listen(self.engine, "before_cursor_execute", self._hit)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._hit)


@bench
def owner_profitability(db: Database, scale: Scale) -> dict[str, Any]:
    """`report profitability` over every client and a year of months (all time entries behind it), beside a
    plain SQL sum of the same entries per client and month."""
    first, last = _window(scale)
    clock.set_now(f"{scale.end + timedelta(days=1)}T08:00:00+00:00")
    try:
        with _Queries(db) as queries:
            began, cpu = time.perf_counter(), time.process_time()
            report = profitability_report(db, first, last)
            seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    finally:
        clock.set_now(None)
    start, end = f"{first}-01", scale.end.isoformat()

    def plain_sql() -> None:  # minutes per client and month over the window, nothing else (on either engine)
        with db.reader() as s:
            s.execute(
                text(
                    "SELECT client_id, substr(CAST(date AS VARCHAR), 1, 7) AS month, SUM(minutes) FROM time_entry "
                    "WHERE date BETWEEN :start AND :end GROUP BY client_id, month"
                ),
                {"start": start, "end": end},
            ).all()

    base, _ = timed(plain_sql, repeat=3)
    return {
        "clients": scale.clients,
        "months": scale.months,
        "time_entries": scale.time_entries,
        "clients_reported": len(report["clients"]),
        "flagged": len(report["flagged"]),
        "queries": queries.count,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),  # beside `seconds`: how much of it this process had the CPU
        "limit_seconds": 10.0,
        "within_limit": seconds <= 10.0,
        "plain_sql_seconds": round(base, 3),
        "ratio_to_plain_sql": round(seconds / base, 1) if base else None,
    }


@bench
def owner_fit(db: Database, scale: Scale) -> dict[str, Any]:
    """`report fit` of the busiest client's year against 10 offers (agreements of every kind and blocks)."""
    first, last = _window(scale)
    with db.reader() as s:
        client_id, entries = s.execute(
            select(TimeEntry.client_id, func.count())
            .where(TimeEntry.date >= scale.end - relativedelta(months=scale.months))
            .group_by(TimeEntry.client_id)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
        key = s.scalar(select(Client.key).where(Client.id == client_id))
    assert key is not None
    clock.set_now(f"{scale.end + timedelta(days=1)}T08:00:00+00:00")
    try:
        median, p95 = timed(lambda: fit_report(db, key, first, last, catalog=OFFERS), repeat=3)
        result = fit_report(db, key, first, last, catalog=OFFERS)
    finally:
        clock.set_now(None)
    return {
        "client": key,
        "time_entries_in_year": entries,
        "offers": len(OFFERS),
        "blocks_bought": {o["offer"]: o["blocks"]["bought"] for o in result["offers"] if o["blocks"]},
        "seconds_median": round(median, 3),
        "seconds_p95": round(p95, 3),
        "limit_seconds": 1.0,
        "within_limit": p95 <= 1.0,
    }

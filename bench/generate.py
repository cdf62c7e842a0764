"""A synthetic MSP at any scale, deterministic by seed, written with bulk inserts.

    python -m bench.generate --clients 5000 --devices 100000 --time-entries 1000000 --alerts 1000000 --seed 1

Every later benchmark measures against a database made here. Clients cycle through every agreement kind
and class; devices, time entries and alerts are spread over clients with a skew (a few big clients, many
small ones), as in a real MSP.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from tenure.agreements.models import Agreement, Block, LedgerEntry, RetainerDeposit, TimeEntry
from tenure.billing.models import Invoice
from tenure.clients.models import BackupJob, Client, Device
from tenure.db.engine import Database
from tenure.intake.models import Alert
from tenure.msp.models import MspSettings
from tenure.vocabulary import SERVICES

CHUNK = 20_000
MANAGED_COVERS = [
    "monitoring",
    "backup_monitoring",
    "patching",
    "antivirus",
    "maintenance",
    "remote_support",
    "onsite",
    "incident",
]
# client profile by index: what each client pays for (cycled, so every kind and class appears at any scale)
PROFILES = [
    "managed",
    "managed",
    "monitoring_block",
    "retainer",
    "call_before_service",
    "adhoc",
    "block",
    "lapsed",
    "managed",
    "monitoring_block",
]


@dataclass(frozen=True)
class Scale:
    clients: int = 50
    devices: int = 1_000
    time_entries: int = 10_000
    alerts: int = 10_000
    backup_jobs: int = 500
    months: int = 12
    seed: int = 1
    end: date = date(2026, 10, 31)  # the last day of generated history


def _weights(rng: random.Random, n: int) -> list[float]:
    return [rng.paretovariate(1.5) for _ in range(n)]


def _spread(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """`total` items over clients in proportion to their weights (deterministic)."""
    whole = sum(weights)
    counts = [int(total * w / whole) for w in weights]
    for i in rng.sample(range(len(weights)), min(len(weights), total - sum(counts))):
        counts[i] += 1
    return counts


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def generate(db: Database, scale: Scale, progress: bool = False) -> dict[str, int]:
    rng = random.Random(scale.seed)
    start = scale.end.replace(day=1) - timedelta(days=31 * (scale.months - 1))
    start = start.replace(day=1)
    span = (scale.end - start).days + 1
    now = datetime(scale.end.year, scale.end.month, scale.end.day, 23, 0, tzinfo=UTC)
    weights = _weights(rng, scale.clients)
    device_counts = _spread(rng, scale.devices, weights)
    entry_counts = _spread(rng, scale.time_entries, weights)
    alert_counts = _spread(rng, scale.alerts, weights)
    job_counts = _spread(rng, scale.backup_jobs, weights)
    written: dict[str, int] = {}

    def put(model: Any, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> None:
        table = model.__table__
        n = 0
        with db.engine.begin() as connection:
            for batch in _chunks(iter(rows)):
                # executemany needs the same columns in every row: absent ones are NULL
                columns = set().union(*(row.keys() for row in batch))
                batch = [{c: row.get(c) for c in columns} for row in batch]
                connection.execute(insert(table), batch)
                n += len(batch)
                if progress:
                    print(f"\r{table.name}: {n:,}", end="", file=sys.stderr)
        if progress:
            print(file=sys.stderr)
        written[table.name] = written.get(table.name, 0) + n

    put(
        MspSettings,
        [
            {
                "id": 1,
                "name": "Synthetic MSP",
                "currency": "USD",
                "timezone": "America/Chicago",
                "hourly_rate": Decimal("150.00"),
                "payment_terms_days": 10,
                "time_rounding_minutes": 15,
                "low_balance_minutes": 180,
                "unused_prepaid": "refund",
                "labor_cost_per_hour": Decimal("45.00"),
                "target_effective_rate": Decimal("100.00"),
                "intake_address": "alerts@synthetic-msp.example",
                "block_bonus": [{"min_hours": 20, "bonus_hours": 2}, {"min_hours": 50, "bonus_hours": 7}],
                "catalog": [],
                "unpaid_work_minutes": {},
            }
        ],
    )
    put(
        Client,
        (
            {
                "id": i + 1,
                "key": f"c{i + 1:05d}",
                "name": f"Client {i + 1:05d}",
                "domains": [f"c{i + 1:05d}.example"],
                "billable_alerts": i % 7 == 0,
                "forward_alerts": i % 11 == 0,
            }
            for i in range(scale.clients)
        ),
    )

    agreements, blocks, deposits, ledger, invoices = [], [], [], [], []
    for i in range(scale.clients):
        cid, profile = i + 1, PROFILES[i % len(PROFILES)]
        signed = start + timedelta(days=rng.randrange(0, 60))
        if profile == "managed":
            agreements.append(
                {
                    "client_id": cid,
                    "key": f"c{cid:05d}-managed",
                    "kind": "managed",
                    "start": signed,
                    "monthly_fee": Decimal(rng.choice([600, 900, 1200, 1800])),
                    "included_minutes": 600,
                    "overage_rate": Decimal("120.00"),
                    "hourly_rate": Decimal("120.00"),
                    "covers": MANAGED_COVERS,
                    "excludes": ["malware_cleanup"],
                }
            )
        elif profile in ("monitoring_block", "call_before_service"):
            kind = "monitoring" if profile == "monitoring_block" else "call_before_service"
            agreements.append(
                {
                    "client_id": cid,
                    "key": f"c{cid:05d}-{kind}",
                    "kind": kind,
                    "start": signed,
                    "monthly_fee": Decimal("100.00"),
                    "block_minutes_per_month": 120,
                    "hourly_rate": Decimal("150.00"),
                    "covers": ["monitoring", "patching"],
                    "excludes": [],
                }
            )
        elif profile == "retainer":
            agreements.append(
                {
                    "client_id": cid,
                    "key": f"c{cid:05d}-retainer",
                    "kind": "retainer",
                    "start": signed,
                    "hourly_rate": Decimal("125.00"),
                    "covers": [],
                    "excludes": [],
                }
            )
            deposits.append(
                {
                    "client_id": cid,
                    "key": f"c{cid:05d}-dep1",
                    "date": signed,
                    "amount": Decimal("5000.00"),
                    "imported": True,
                }
            )
        elif profile == "adhoc":
            agreements.append(
                {
                    "client_id": cid,
                    "key": f"c{cid:05d}-adhoc",
                    "kind": "adhoc",
                    "start": signed,
                    "hourly_rate": Decimal("150.00"),
                    "covers": [],
                    "excludes": [],
                }
            )
        if profile in ("monitoring_block", "block"):
            blocks.append(
                {
                    "id": len(blocks) + 1,
                    "client_id": cid,
                    "key": f"c{cid:05d}-b1",
                    "purchased": signed,
                    "minutes": 50 * 60,
                    "bonus_minutes": 7 * 60,
                    "price": Decimal("5750.00"),
                    "imported": True,
                }
            )
        if profile == "lapsed":
            invoices.append(
                {
                    "client_id": cid,
                    "number": f"H-{cid:05d}",
                    "kind": "monthly",
                    "date": start - timedelta(days=500),
                    "due_date": start - timedelta(days=490),
                    "status": "paid",
                    "total": Decimal("300.00"),
                    "imported": True,
                    "recurring": False,
                }
            )
    put(Agreement, agreements)
    put(Block, blocks)
    put(RetainerDeposit, deposits)
    for b in blocks:
        for kind, minutes in (("purchase", b["minutes"]), ("bonus", b["bonus_minutes"])):
            ledger.append(
                {
                    "client_id": b["client_id"],
                    "account": "block",
                    "block_id": b["id"],
                    "kind": kind,
                    "date": b["purchased"],
                    "minutes": minutes,
                    "amount": Decimal("0.00"),
                    "cause_type": "block",
                    "cause_id": b["id"],
                    "recorded_at": now,
                    "actor": "bench",
                }
            )
    for n, d in enumerate(deposits):
        ledger.append(
            {
                "client_id": d["client_id"],
                "account": "retainer",
                "kind": "deposit",
                "date": d["date"],
                "minutes": 0,
                "amount": d["amount"],
                "cause_type": "retainer_deposit",
                "cause_id": n + 1,
                "recorded_at": now,
                "actor": "bench",
            }
        )
    put(LedgerEntry, ledger)
    put(Invoice, invoices)

    def devices() -> Iterator[dict[str, Any]]:
        n = 0
        for i, count in enumerate(device_counts):
            for d in range(count):
                n += 1
                server = d % 10 == 0
                yield {
                    "id": n,
                    "client_id": i + 1,
                    "key": f"d{n:07d}",
                    "hostname": f"C{i + 1:05d}-{'SRV' if server else 'WS'}{d:04d}",
                    "role": "server" if server else "workstation",
                    "os": "Windows",
                    "features": ["patching", "remote_control", "antivirus"],
                    "checks": ["disk_space", "cpu"],
                    "rmm_vendor": "tacticalrmm",
                    "rmm_id": f"agent-{n}",
                    "active": True,
                }

    put(Device, devices())

    def jobs() -> Iterator[dict[str, Any]]:
        n = 0
        for i, count in enumerate(job_counts):
            for _ in range(count):
                n += 1
                yield {
                    "id": n,
                    "client_id": i + 1,
                    "key": f"j{n:06d}",
                    "product": rng.choice(["veeam", "restic", "acronis"]),
                    "name": f"Job {n}",
                    "schedule": "0 22 * * *",
                    "timezone": "America/Chicago",
                    "grace_minutes": 120,
                    "ping_uuid": f"00000000-0000-4000-8000-{n:012d}",
                    "status": "active",
                }

    put(BackupJob, jobs())

    work_types = list(SERVICES)

    def entries() -> Iterator[dict[str, Any]]:
        for i, count in enumerate(entry_counts):
            for n in range(count):
                yield {
                    "client_id": i + 1,
                    "key": f"t{n + 1:06d}",
                    "date": start + timedelta(days=rng.randrange(span)),
                    "minutes": rng.randrange(5, 240, 5),
                    "work_type": rng.choice(work_types),
                    "technician": rng.choice(("terry", "rick", "dana", "sam")),
                    "on_hold": False,
                }

    put(TimeEntry, entries())

    def alerts() -> Iterator[dict[str, Any]]:
        n = 0
        for i, count in enumerate(alert_counts):
            for _ in range(count):
                n += 1
                seen = now - timedelta(minutes=rng.randrange(span * 24 * 60))
                decision = rng.choice(("ticket", "suppress", "suppress", "quote", "forward"))
                yield {
                    "client_id": i + 1,
                    "source": "alertmanager",
                    "fingerprint": f"fp{n % 50_000:06d}-{i}",
                    "service": rng.choice(("monitoring", "backup_monitoring", "patching")),
                    "severity": "warning",
                    "title": f"Alert {n}",
                    "status": "resolved" if n % 3 else "firing",
                    "decision": decision,
                    "reason": "synthetic",
                    "count": 1 + n % 4,
                    "first_seen": seen,
                    "last_seen": seen,
                    "details": {},
                }

    put(Alert, alerts())
    _advance_sequences(db, (MspSettings, Client, Block, Device, BackupJob))
    return written


def _advance_sequences(db: Database, models: tuple[Any, ...]) -> None:
    """On PostgreSQL, the id sequences of the tables written with explicit ids moved past them (SQLite takes
    the next id from the table itself), so rows added later (a benchmark's, the app's) get free ids."""
    if db.is_sqlite:
        return
    with db.engine.begin() as connection:
        for model in models:
            table = model.__table__.name
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            connection.execute(text(f"SELECT setval({sequence}, COALESCE(MAX(id), 0) + 1, false) FROM {table}"))


def add_client(db: Database, scale: Scale, key: str, entries: int, seed: int = 3) -> int:
    """One more client, managed (included hours, overage) with a prepaid block bought at its start, as the
    generator makes them, and `entries` time entries over the generated history; not allocated. Its id."""
    rng = random.Random(seed)
    start = (scale.end.replace(day=1) - timedelta(days=31 * (scale.months - 1))).replace(day=1)
    span = (scale.end - start).days + 1
    now = datetime(scale.end.year, scale.end.month, scale.end.day, 23, 0, tzinfo=UTC)
    work_types = list(SERVICES)
    with db.engine.begin() as connection:
        cid = connection.execute(
            insert(Client).returning(Client.id),
            {
                "key": key,
                "name": f"Client {key}",
                "domains": [f"{key}.example"],
                "billable_alerts": False,
                "forward_alerts": False,
            },
        ).scalar_one()
        connection.execute(
            insert(Agreement),
            {
                "client_id": cid,
                "key": f"{key}-managed",
                "kind": "managed",
                "start": start,
                "monthly_fee": Decimal(1800),
                "included_minutes": 600,
                "overage_rate": Decimal("120.00"),
                "hourly_rate": Decimal("120.00"),
                "covers": MANAGED_COVERS,
                "excludes": ["malware_cleanup"],
            },
        )
        block = connection.execute(
            insert(Block).returning(Block.id),
            {
                "client_id": cid,
                "key": f"{key}-b1",
                "purchased": start,
                "minutes": 50 * 60,
                "bonus_minutes": 7 * 60,
                "price": Decimal("5750.00"),
                "imported": True,
            },
        ).scalar_one()
        connection.execute(
            insert(LedgerEntry),
            [
                {
                    "client_id": cid,
                    "account": "block",
                    "block_id": block,
                    "kind": kind,
                    "date": start,
                    "minutes": minutes,
                    "amount": Decimal("0.00"),
                    "cause_type": "block",
                    "cause_id": block,
                    "recorded_at": now,
                    "actor": "bench",
                }
                for kind, minutes in (("purchase", 50 * 60), ("bonus", 7 * 60))
            ],
        )
        rows = [
            {
                "client_id": cid,
                "key": f"t{n + 1:06d}",
                "date": start + timedelta(days=rng.randrange(span)),
                "minutes": rng.randrange(5, 240, 5),
                "work_type": rng.choice(work_types),
                "technician": rng.choice(("terry", "rick", "dana", "sam")),
                "on_hold": False,
            }
            for n in range(entries)
        ]
        for batch in _chunks(iter(rows)):
            connection.execute(insert(TimeEntry), batch)
    return cid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=Scale.clients)
    parser.add_argument("--devices", type=int, default=Scale.devices)
    parser.add_argument("--time-entries", type=int, default=Scale.time_entries)
    parser.add_argument("--alerts", type=int, default=Scale.alerts)
    parser.add_argument("--backup-jobs", type=int, default=Scale.backup_jobs)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: a fresh SQLite file in bench/out/)")
    args = parser.parse_args(argv)
    url = args.database or fresh_sqlite("synthetic.db")
    db = Database(url)
    db.migrate()
    scale = Scale(args.clients, args.devices, args.time_entries, args.alerts, args.backup_jobs, seed=args.seed)
    began = time.perf_counter()
    written = generate(db, scale, progress=sys.stderr.isatty())
    print(json.dumps({"database": url, "rows": written, "seconds": round(time.perf_counter() - began, 2)}))


def fresh_sqlite(name: str) -> str:
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    path = out / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


if __name__ == "__main__":
    main()

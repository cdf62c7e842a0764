"""Benchmarks of single writes at full scale: a `PATCH` of one object through the REST API, and voiding one
time entry of a client with 10,000 of them (its work allocated again).

Registered into bench.registry's table when bench.run loads its plugins. Both run on a scratch copy of the
generated MSP (`bench.run._copy`: a SQLite file, or a PostgreSQL database made from it as a template), on
SQLite or PostgreSQL (`python -m bench.run --only patch_p95,void_reallocate [--database URL]`). Measures
only: each figure is printed beside its limit, nothing is asserted.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import httpx
from dateutil.relativedelta import relativedelta
from sqlalchemy import func, insert, select

import bench.run as run
from bench.generate import Scale, add_client
from bench.registry import bench
from tenure import clock
from tenure.accounts.service import create_token
from tenure.agreements.changes import void_time_entry
from tenure.agreements.models import Agreement, LedgerEntry, TimeEntry
from tenure.agreements.service import allocate_clients
from tenure.billing.models import Invoice, InvoiceLine
from tenure.billing.service import run_billing
from tenure.clients.models import Client, Contact, Device
from tenure.db.engine import Database

PATCH_REQUESTS = 300  # measured, a third of each kind, after WARMUP of each kind
WARMUP = 5
PATCH_LIMIT_MS = 50.0
VOID_ENTRIES = 10_000
VOIDS = 20  # half of them in months already invoiced
VOID_LIMIT_MS = 200.0
OS_NAMES = ("Windows 11 Pro 23H2", "Windows 10 Pro 22H2", "Windows Server 2022", "Ubuntu 24.04 LTS", "macOS 15")


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples_ms), 1),
        "p95_ms": round(_percentile(samples_ms, 0.95), 1),
        "p99_ms": round(_percentile(samples_ms, 0.99), 1),
        "max_ms": round(max(samples_ms), 1),
    }


def _invoiced_before(scale: Scale) -> date:
    """The 1st of the past month whose billing run the benchmarks make: work before it is invoiced."""
    return (scale.end.replace(day=1) - relativedelta(months=2)).replace(day=1)


def _now(scale: Scale) -> str:
    """The morning after the generated history ends."""
    return f"{scale.end + timedelta(days=1)}T08:00:00+00:00"


@contextmanager
def served(target: Database, now: str | None = None, worker: bool = False) -> Iterator[str]:
    """A real `tenure serve` (uvicorn, the app of `tenure.api.app.create_app`; no worker unless `worker`) on
    the database, as bench.run's intake_http and bench.web run it; its base URL once /healthz answers."""
    port = run.free_port()
    env = {**os.environ, "TENURE_DATABASE_URL": target.url}
    if now:
        env["TENURE_NOW"] = now
    url = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "-m", "tenure", "serve", "--port", str(port), *([] if worker else ["--no-worker"])]
    with run.serving(serve, env, f"{url}/healthz"):
        yield url


def _contacts(db: Database, scale: Scale, seed: int = 13) -> None:
    """What the generator does not make: one or two contacts per client."""
    rng = random.Random(seed)
    rows = []
    for cid in range(1, scale.clients + 1):
        for n in range(1 + cid % 2):
            rows.append(
                {
                    "client_id": cid,
                    "name": f"Contact {cid:05d}-{n}",
                    "email": f"contact{n}@c{cid:05d}.example",
                    "phone": f"+1 555 {rng.randrange(10**7):07d}",
                    "roles": ["primary", "billing"] if n == 0 else ["technical"],
                }
            )
    with db.engine.begin() as connection:
        connection.execute(insert(Contact), rows)


def _patches(db: Database, n: int, seed: int = 17) -> list[tuple[str, str, dict[str, Any]]]:
    """`n` PATCHes (kind, path, body) over random clients, the three kinds interleaved: a device's `os`, a
    contact's phone, an agreement's `end` (not a money term: a billed agreement takes it without a date)."""
    rng = random.Random(seed)
    with db.reader() as s:
        devices = s.execute(select(Client.key, Device.key).join(Client, Client.id == Device.client_id)).all()
        contacts = s.execute(select(Client.key, Contact.id).join(Client, Client.id == Contact.client_id)).all()
        agreements = s.execute(
            select(Client.key, Agreement.key).join(Client, Client.id == Agreement.client_id).order_by(Agreement.id)
        ).all()
    devices.sort()
    contacts.sort()
    out = []
    for i in range(n):
        if i % 3 == 0:
            client, device = rng.choice(devices)
            out.append(("device_os", f"/api/v1/clients/{client}/devices/{device}", {"os": rng.choice(OS_NAMES)}))
        elif i % 3 == 1:
            client, contact = rng.choice(contacts)
            phone = f"+1 555 {rng.randrange(10**7):07d}"
            out.append(("contact_phone", f"/api/v1/clients/{client}/contacts/{contact}", {"phone": phone}))
        else:
            client, agreement = rng.choice(agreements)
            path = f"/api/v1/clients/{client}/agreements/{agreement}"
            out.append(("agreement_end", path, {"end": "2030-12-31"}))
    return out


@bench
def patch_p95(db: Database, scale: Scale) -> dict[str, Any]:
    """`PATCH /api/v1/clients/{key}/{kind}/{item}` of one object, one request at a time from one kept-alive
    connection to a real `tenure serve`, with an owner's API token: p50/p95/p99 beside the 50 ms limit. A
    past month is billed first, so most agreements patched have invoices (their `end` is no money term: they
    take it without a date) and their clients' earlier work is frozen, as in an MSP with history."""
    return measure_patches(db, scale, PATCH_REQUESTS, WARMUP)


def measure_patches(db: Database, scale: Scale, requests: int, warmup: int) -> dict[str, Any]:
    target = run._copy(db, "patch")
    try:
        began = time.perf_counter()
        _contacts(target, scale)
        period = _invoiced_before(scale).strftime("%Y-%m")
        clock.set_now(_now(scale))
        try:  # a past month billed: agreements have invoices, and their clients' earlier work is frozen
            run_billing(target, period)
        finally:
            clock.set_now(None)
        gc.collect()
        token, _ = create_token(target, "bench-patch", "owner")
        plan = _patches(target, 3 * warmup + requests)
        with target.reader() as s:
            billed = set(
                s.scalars(
                    select(Agreement.key)
                    .join(InvoiceLine, InvoiceLine.agreement_id == Agreement.id)
                    .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
                    .where(Invoice.status != "void")
                    .distinct()
                )
            )
        prepared = time.perf_counter() - began
        samples: dict[str, list[float]] = {"device_os": [], "contact_phone": [], "agreement_end": []}
        with (
            served(target, _now(scale)) as url,
            httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http,
        ):
            for i, (kind, path, body) in enumerate(plan):
                t0 = time.perf_counter()
                answer = http.patch(path, json=body)
                elapsed = (time.perf_counter() - t0) * 1000
                assert answer.status_code == 200, (path, body, answer.status_code, answer.text[:300])
                if i >= 3 * warmup:
                    samples[kind].append(elapsed)
        with target.reader() as s:  # the changes are there
            ended = s.scalar(select(func.count()).select_from(Agreement).where(Agreement.end == date(2030, 12, 31)))
    finally:
        target.engine.dispose()
        run.drop_copies(db, "patch")
    every = [ms for kind in samples.values() for ms in kind]
    overall = _summary(every)
    return {
        "via": "http",  # `tenure serve` in a subprocess (uvicorn), httpx client, keep-alive, sequential
        "clients": scale.clients,
        "requests": len(every),
        "warmup_requests": 3 * warmup,
        "kinds": {kind: {"requests": len(ms), **_summary(ms)} for kind, ms in samples.items()},
        **overall,
        "limit_p95_ms": PATCH_LIMIT_MS,
        "within_limit": overall["p95_ms"] <= PATCH_LIMIT_MS,
        "invoiced_period": period,
        "agreement_patches_of_billed": sum(
            1 for kind, path, _ in plan[3 * warmup :] if kind == "agreement_end" and path.rsplit("/", 1)[1] in billed
        ),
        "agreements_ended_2030": ended,
        "prepare_seconds": round(prepared, 1),
    }


@bench
def void_reallocate(db: Database, scale: Scale) -> dict[str, Any]:
    """`void_time_entry` of one entry of a managed client (with a block) that has 10,000 time entries: the
    client's work is allocated again and the ledger differences posted. Half the entries voided are in
    months an invoice already billed (frozen work: the next invoice credits them). Timed in this process as
    it is, the collector's share beside; then as many other voids with the heap of before frozen, as
    `tenure serve` freezes its startup heap (a full collection then walks only what came since)."""
    return measure_voids(db, scale, VOID_ENTRIES, VOIDS)


class _Collections:
    """The time the garbage collector took meanwhile, and its full (generation 2) collections."""

    def __init__(self) -> None:
        self.seconds, self.full, self._began = 0.0, 0, 0.0

    def _seen(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._began
        self.full += info["generation"] == 2

    def __enter__(self) -> _Collections:
        gc.callbacks.append(self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._seen)


def _voided(target: Database, entry_ids: list[int]) -> tuple[list[float], dict[str, Any]]:
    """Milliseconds of each void, and the collector's share of them."""
    samples: list[float] = []
    with _Collections() as collected:
        for entry_id in entry_ids:
            t0 = time.perf_counter()
            answer = void_time_entry(target, entry_id, "bench")
            samples.append((time.perf_counter() - t0) * 1000)
            assert answer["voided"], answer
    return samples, {
        "gc_ms_per_void": round(collected.seconds * 1000 / len(samples), 1),
        "gc_share": round(collected.seconds * 1000 / sum(samples), 2),
        "full_collections": collected.full,
    }


def measure_voids(db: Database, scale: Scale, entries: int, voids: int) -> dict[str, Any]:
    target = run._copy(db, "void")
    clock.set_now(_now(scale))
    try:
        began = time.perf_counter()
        cid = add_client(target, scale, "cvoid", entries)
        t0 = time.perf_counter()
        with target.unit_of_work() as s:
            allocate_clients(s, [cid])
        first_allocation = time.perf_counter() - t0
        # a past month billed: work before its 1st is invoiced (frozen), later work is not
        invoiced_before = _invoiced_before(scale)
        period = invoiced_before.strftime("%Y-%m")
        t0 = time.perf_counter()
        invoices_in_run = len(run_billing(target, period).invoices)
        billing_seconds = time.perf_counter() - t0
        prepared = time.perf_counter() - began
        gc.collect()  # nothing of the setup left to walk
        rng = random.Random(23)
        with target.reader() as s:
            rows = s.execute(
                select(TimeEntry.id, TimeEntry.date).where(TimeEntry.client_id == cid).order_by(TimeEntry.id)
            ).all()
            invoice = s.scalar(select(Invoice.number).where(Invoice.client_id == cid, Invoice.period == period))
        old = [r.id for r in rows if r.date < invoiced_before]
        new = [r.id for r in rows if r.date >= invoiced_before]
        half = voids // 2
        olds, news = rng.sample(old, 1 + 2 * half), rng.sample(new, 2 * (voids - half))
        batches = [olds[1 : 1 + half] + news[: voids - half], olds[1 + half :] + news[voids - half :]]
        for batch in batches:
            rng.shuffle(batch)
        t0 = time.perf_counter()
        void_time_entry(target, olds[0], "bench")  # the first void of the process (caches filled): apart
        first_ms = (time.perf_counter() - t0) * 1000
        samples, collections = _voided(target, batches[0])
        gc.collect()
        gc.freeze()  # as `tenure serve` does after startup: collections no longer walk what was there before
        try:
            frozen_samples, frozen_collections = _voided(target, batches[1])
        finally:
            gc.unfreeze()
        with target.reader() as s:
            voided = s.scalar(
                select(func.count())
                .select_from(TimeEntry)
                .where(TimeEntry.client_id == cid, TimeEntry.voided_at.is_not(None))
            )
            adjustments = s.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.client_id == cid, LedgerEntry.kind == "adjustment")
            )
    finally:
        clock.set_now(None)
        target.engine.dispose()
        run.drop_copies(db, "void")
    summary, frozen, invoiced = _summary(samples), _summary(frozen_samples), set(old)
    return {
        "client_time_entries": entries,
        "voids": len(samples),
        "voids_in_invoiced_months": sum(1 for e in batches[0] if e in invoiced),
        "invoiced_period": period,
        "client_invoice": invoice,
        "invoices_in_run": invoices_in_run,
        **{k: v for k, v in summary.items() if k != "p99_ms"},
        "first_void_ms": round(first_ms, 1),
        "limit_ms": VOID_LIMIT_MS,
        "within_limit": summary["p95_ms"] <= VOID_LIMIT_MS,
        "max_within_limit": summary["max_ms"] <= VOID_LIMIT_MS,
        # of those voids' time: Python's garbage collector (every full collection walks the whole process)
        **collections,
        # as many other voids (as many invoiced) with the heap there before frozen, as `tenure serve` runs
        "with_startup_heap_frozen": {
            "voids": len(frozen_samples),
            "voids_in_invoiced_months": sum(1 for e in batches[1] if e in invoiced),
            **{k: v for k, v in frozen.items() if k != "p99_ms"},
            "within_limit": frozen["p95_ms"] <= VOID_LIMIT_MS,
            **frozen_collections,
        },
        "voided_entries": voided,
        "ledger_adjustments": adjustments,
        "first_allocation_seconds": round(first_allocation, 3),
        "billing_run_seconds": round(billing_seconds, 1),
        "prepare_seconds": round(prepared, 1),
    }

"""Alertmanager's batch path over HTTP, processed and not only acknowledged: bodies of 100 alerts from 4
managed clients posted to `tenure serve`, as deployed (SQLite: the server with its embedded worker;
PostgreSQL: `tenure serve --no-worker` beside `tenure worker --processes N`, one process per core).

Registered into bench.registry's table when bench.run loads its plugins. Two rates: acknowledged (every
answer 202, the payloads stored), and processed (every alert stored, decided and recorded, from the first
request until nothing waits). Every alert belongs to a client with a managed agreement covering monitoring,
so each takes the whole path: a ticket for each new fingerprint, a count on its open alert for a repeat.
Measures only: the figures are printed beside the limit, nothing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select

import bench.run as run
from bench.generate import Scale
from bench.registry import bench
from bench.writes import served
from tenure.accounts.service import create_token
from tenure.agreements.models import Agreement
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.intake.models import Alert

BODIES = 200  # of 100 alerts each: 20,000 alerts
PER_BODY = 100
CLIENTS = 4
LIMIT = 5_000  # alerts processed per second: 5 x Alerta 9.1.0's batch path on this machine (issue 21)


def _managed_clients(db: Database) -> list[str]:
    with db.reader() as s:
        keys = s.scalars(
            select(Client.key)
            .join(Agreement, Agreement.client_id == Client.id)
            .where(Agreement.kind == "managed", Agreement.end.is_(None))
            .order_by(Client.key)
            .limit(CLIENTS)
        ).all()
    return list(keys)


def _body(client: str, n: int) -> bytes:
    """An Alertmanager webhook (version 4) of PER_BODY alerts for one client: a few hundred fingerprints per
    client, so a run both opens tickets and counts repeats."""
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "DiskLow",
                "client": client,
                "instance": f"{client}-host-{(n * PER_BODY + i) % 300}:9100",
                "severity": "warning",
            },
            "annotations": {"summary": f"Disk almost full on volume {i % 7}"},
            "startsAt": "2026-12-01T08:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": f"{client}-{(n * PER_BODY + i) % 900:04x}",
        }
        for i in range(PER_BODY)
    ]
    document = {
        "version": "4",
        "groupKey": f"{{}}:{{client=\"{client}\"}}",
        "status": "firing",
        "receiver": "tenure",
        "groupLabels": {"client": client},
        "commonLabels": {"client": client},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": alerts,
    }
    return json.dumps(document).encode()


def alertmanager_bodies(clients: list[str]) -> list[bytes]:
    """BODIES webhook bodies, taking turns among the clients."""
    return [_body(clients[n % len(clients)], n) for n in range(BODIES)]


def post_bodies(url: str, bodies: list[bytes], headers: dict[str, str] | None = None) -> list[int]:
    """POST the bodies to `url` from CLIENTS senders at once (one per client, as each client's Alertmanager
    sends its own groups, body n by sender n % CLIENTS): every answer's status."""

    def post(chunk: list[bytes]) -> list[int]:
        with httpx.Client(headers=headers, timeout=120) as http:
            return [
                http.post(url, content=body, headers={"Content-Type": "application/json"}).status_code
                for body in chunk
            ]

    with ThreadPoolExecutor(CLIENTS) as pool:
        answered = pool.map(post, [bodies[i::CLIENTS] for i in range(CLIENTS)])
        return [code for codes in answered for code in codes]


@bench
def intake_http_batches(db: Database, scale: Scale) -> dict[str, Any]:
    """Alertmanager bodies of 100 alerts from 4 managed clients over HTTP: acknowledged and processed per second."""
    target = run._copy(db, "batches")
    run.maintenance_done(target)
    token, _ = create_token(target, "bench", "intake")
    clients = _managed_clients(target)
    with target.reader() as s:
        last_before = s.scalar(select(func.max(Alert.id))) or 0
    env = {**os.environ, "TENURE_DATABASE_URL": target.url}
    processes = os.cpu_count() or 1
    # SQLite: the server's own worker, as deployed on one process; PostgreSQL: a worker process per core beside
    workers = None
    if not target.is_sqlite:
        workers = subprocess.Popen(
            [sys.executable, "-m", "tenure", "worker", "--processes", str(processes)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    bodies = alertmanager_bodies(clients)
    try:
        with served(target, worker=target.is_sqlite) as url:
            time.sleep(2)  # the worker's first round, with nothing to do, before the clock starts
            began = time.perf_counter()
            statuses = post_bodies(f"{url}/api/v1/intake/alertmanager", bodies, {"Authorization": f"Bearer {token}"})
            acknowledged = time.perf_counter() - began
            while run.waiting_payloads(target) and time.perf_counter() - began < 300:
                time.sleep(0.02)
            processed = time.perf_counter() - began
            left = run.waiting_payloads(target)
    finally:
        if workers is not None:
            workers.terminate()
            workers.wait(timeout=30)
    with target.reader() as s:
        decided = dict(  # each alert of the run counted once: a repeat counts on its open alert
            s.execute(
                select(Alert.decision, func.sum(Alert.count)).where(Alert.id > last_before).group_by(Alert.decision)
            ).all()
        )
        new_alerts = s.scalar(select(func.count()).select_from(Alert).where(Alert.id > last_before)) or 0
    target.engine.dispose()
    alerts = BODIES * PER_BODY
    rate = alerts / processed
    return {
        "alerts": alerts,
        "bodies": BODIES,
        "clients": clients,
        "workers": 1 if target.is_sqlite else processes,
        "answers_202": sum(1 for code in statuses if code == 202),
        "acknowledged_per_second": round(alerts / acknowledged),
        "processed_per_second": round(rate),
        "limit_processed_per_second": LIMIT,
        "left_waiting": left,
        "new_alerts": new_alerts,
        "decisions_by_count": {k: int(v) for k, v in decided.items()},
        "within_limit": rate >= LIMIT and left == 0 and all(code == 202 for code in statuses),
    }

"""Alertmanager's batch path over HTTP, processed and not only acknowledged: bodies of 100 alerts from 4
managed clients posted to `tenure serve`, as deployed (SQLite: the server with its embedded worker;
PostgreSQL: `tenure serve --no-worker` beside `tenure worker --processes N`, one process per core).

Registered into bench.registry's table when bench.run loads its plugins. Two rates: acknowledged (every
answer 202, the payloads stored), and processed (every alert stored, decided and recorded, from the first
request until nothing waits). Every alert belongs to a client with a managed agreement covering monitoring,
so each takes the whole path: a ticket for each new fingerprint, a count on its open alert for a repeat.
`varied_bodies` is a second load for the side-by-side with Alerta (bench/alerta.py): groups of 1 to 60 alerts
from 40 clients, each alert with the labels and annotations a real rule carries, some of them resolved.
Measures only: the figures are printed beside the limit, nothing is asserted.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
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


def _managed_clients(db: Database, count: int = CLIENTS) -> list[str]:
    with db.reader() as s:
        keys = s.scalars(
            select(Client.key)
            .join(Agreement, Agreement.client_id == Client.id)
            .where(Agreement.kind == "managed", Agreement.end.is_(None))
            .order_by(Client.key)
            .limit(count)
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
    return _document(client, alerts)


def alertmanager_bodies(clients: list[str]) -> list[bytes]:
    """BODIES webhook bodies, taking turns among the clients."""
    return [_body(clients[n % len(clients)], n) for n in range(BODIES)]


VARIED_BODIES = 700
VARIED_CLIENTS = 40
_GROUP_SIZES = (1, 1, 2, 3, 5, 8, 20, 40, 60)  # Alertmanager's groups: mostly small, a storm's few large
_ALERT_NAMES = ("DiskLow", "HighCPU", "MemoryPressure", "NodeDown", "CertExpiring", "BackupLate", "RAIDDegraded")


def varied_bodies(clients: list[str], seed: int = 42) -> tuple[list[bytes], int]:
    """VARIED_BODIES webhook bodies taking turns among the clients, of random group sizes (about 16 alerts on
    average), each alert with fourteen labels, three annotations and start and end times, three in ten of them
    resolved; and how many alerts they hold. Alerts of a client's hosts fire again and resolve across bodies."""
    rng = random.Random(seed)
    bodies, total = [], 0
    for n in range(VARIED_BODIES):
        client = clients[n % len(clients)]
        alerts = []
        for i in range(rng.choice(_GROUP_SIZES)):
            host, name = f"{client}-srv{rng.randrange(60):02d}", rng.choice(_ALERT_NAMES)
            resolved = rng.random() < 0.3
            labels = {
                "alertname": name, "client": client, "instance": f"{host}:9100", "job": "node",
                "severity": rng.choice(("warning", "critical", "informational")), "site": f"site-{rng.randrange(4)}",
                "env": "prod", "team": "ops", "device": f"/dev/sd{'abc'[i % 3]}", "mountpoint": f"/data{i % 4}",
                "fstype": "ext4", "namespace": "infra", "hostname": host, "region": "eu-west",
            }  # fmt: skip
            alerts.append(
                {
                    "status": "resolved" if resolved else "firing",
                    "labels": labels,
                    "annotations": {
                        "summary": f"{name} on {host}",
                        "description": f"{name} has been active on {host} for more than 5 minutes. " * 4,
                        "runbook_url": f"https://runbooks.example/{name}",
                    },
                    "startsAt": "2026-12-01T08:00:00Z",
                    "endsAt": "2026-12-01T09:00:00Z" if resolved else "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
                    "fingerprint": hashlib.sha256(f"{host}/{name}/{i % 4}".encode()).hexdigest()[:16],
                }
            )
        total += len(alerts)
        bodies.append(_document(client, alerts))
    return bodies, total


def _document(client: str, alerts: list[dict[str, Any]]) -> bytes:
    """An Alertmanager webhook (version 4) of one client's group of alerts."""
    return json.dumps(
        {
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
    ).encode()


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
    return processed_over_http(db, "batches", lambda clients: (alertmanager_bodies(clients), BODIES * PER_BODY))


def processed_over_http(
    db: Database,
    name: str,
    load: Callable[[list[str]], tuple[list[bytes], int]],
    clients: int = CLIENTS,
) -> dict[str, Any]:
    """The bodies `load` makes for `clients` managed clients, posted to `tenure serve` on a copy of the database
    named `name`, as deployed: acknowledged and processed per second."""
    target = run._copy(db, name)
    run.maintenance_done(target)
    token, _ = create_token(target, "bench", "intake")
    keys = _managed_clients(target, clients)
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
    bodies, alerts = load(keys)
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
    rate = alerts / processed
    return {
        "alerts": alerts,
        "bodies": len(bodies),
        "clients": keys if len(keys) <= CLIENTS else len(keys),
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

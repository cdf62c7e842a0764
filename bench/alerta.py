"""Tenure and Alerta 9.1.0 side by side, in one run, on the same PostgreSQL and the same two cores (issue 21's
comparison): the same Alertmanager bodies of 100 alerts from 4 clients; a second batch load, groups of 1 to 60
alerts with a real rule's labels from 40 clients, some resolved (`varied_bodies`); and one alert per request
from 16 connections.

Alerta runs as the issue measured it: gunicorn, 2 workers × 4 threads, no plugins, its own database
(`<database>_alerta`) on the same server. It is installed on first use into bench/out/alerta-venv (a
virtualenv of its own: its Flask and psycopg2 stay out of Tenure's environment); where that cannot be done
(no network to PyPI) the benchmark says so and measures nothing. PostgreSQL only: Alerta has no SQLite
backend. Registered into bench.registry's table when bench.run loads its plugins. Measures only.

Alerta decides inside the request (its answer 201 means stored and deduplicated), so for it acknowledged and
processed are one figure; Tenure's processed figure counts until its worker has decided every alert.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

import bench.run as run
from bench.generate import Scale
from bench.http_batches import (
    PER_BODY,
    VARIED_CLIENTS,
    _managed_clients,
    alertmanager_bodies,
    intake_http_batches,
    post_bodies,
    processed_over_http,
    varied_bodies,
)
from bench.registry import bench
from tenure.db.engine import Database

ALERTA = "alerta-server==9.1.0"
VENV = Path(__file__).parent / "out" / "alerta-venv"
SINGLE = 4_000  # one-alert requests to Alerta: at its ~150/s, about half a minute
RATIO = 5  # Tenure's batch path, processed, against Alerta's (issue 21)


def _gunicorn() -> Path:
    """Alerta's gunicorn in bench/out/alerta-venv, installed there first if it is not."""
    gunicorn = VENV / "bin" / "gunicorn"
    if not gunicorn.exists():
        print(f"installing {ALERTA} into {VENV}…", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", ALERTA, "gunicorn", "psycopg2-binary"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return gunicorn


@contextmanager
def _alerta(db: Database, gunicorn: Path) -> Iterator[str]:
    """Alerta serving on a free port over a fresh database beside the benchmark's; its base URL once healthy."""
    url = make_url(db.url)
    name = f"{url.database}_alerta"
    run._recreate_postgresql(db.url, name)
    config = VENV / "alertad.conf"
    config.write_text("PLUGINS = []\nLOG_LEVEL = 'WARNING'\n")
    port = run.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url.set(drivername="postgresql", database=name).render_as_string(hide_password=False),
        "ALERTA_SVR_CONF_FILE": str(config),
    }
    # its schema made once, before two workers boot and race to make it (the loser stops gunicorn)
    subprocess.run([str(VENV / "bin" / "python"), "-c", "import alerta; alerta.create_app()"], env=env, check=True)
    base = f"http://127.0.0.1:{port}"
    gunicorn_command = [str(gunicorn), "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}", "alerta:create_app()"]
    try:
        with run.serving(gunicorn_command, env, f"{base}/management/healthcheck"):
            yield base
    finally:
        run._on_server(db.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _one_alert(n: int, clients: list[str]) -> bytes:
    """Request n's alert: 480 distinct alerts, each repeated. An alert is only ever sent on one connection
    (480 is a multiple of the 16 connections, request n goes on n % 16): two requests creating the same alert at
    once make Alerta answer 500 (a duplicate key), a race of its own that this load does not measure."""
    k = n % 480
    client = clients[k % len(clients)]
    return json.dumps(
        {
            "resource": f"{client}-host-{k}",
            "event": "DiskLow",
            "environment": "Production",
            "service": [client],
            "severity": "warning",
            "text": f"Disk low on {client}-host-{k}",
        }
    ).encode()


def _alerta_figures(db: Database, gunicorn: Path, clients: list[str], many: list[str]) -> dict[str, Any]:
    with _alerta(db, gunicorn) as base:
        began = time.perf_counter()
        statuses = post_bodies(f"{base}/webhooks/prometheus", alertmanager_bodies(clients))
        batches = time.perf_counter() - began
        stored = httpx.get(f"{base}/alerts/count", timeout=30).json().get("total")
        varied, varied_alerts = varied_bodies(many)
        began = time.perf_counter()
        varied_statuses = post_bodies(f"{base}/webhooks/prometheus", varied)
        varied_seconds = time.perf_counter() - began
        port = int(base.rsplit(":", 1)[1])
        seconds, latencies = run.one_per_request(port, "/alert", [_one_alert(n, clients) for n in range(SINGLE)], 201)
    alerts = len(statuses) * PER_BODY
    return {
        "batches": {
            "alerts": alerts,
            "answers_201": sum(1 for code in statuses if code == 201),
            "alerts_stored": stored,  # distinct alerts after Alerta's de-duplication
            "processed_per_second": round(alerts / batches),
        },
        "varied_batches": {
            "alerts": varied_alerts,
            "bodies": len(varied),
            "answers_201": sum(1 for code in varied_statuses if code == 201),
            "processed_per_second": round(varied_alerts / varied_seconds),
        },
        "one_per_request": {
            "requests": len(latencies),
            "requests_per_second": round(len(latencies) / seconds),
            "p99_ms": round(latencies[int(0.99 * len(latencies)) - 1] * 1000, 1),
        },
    }


@bench
def alerta_side_by_side(db: Database, scale: Scale) -> dict[str, Any]:
    """Alerta 9.1.0 and Tenure on the same loads, one after the other, on this PostgreSQL: the ratios."""
    if db.is_sqlite:
        return {"skipped": "Alerta has no SQLite backend: run with --engines postgresql or --database URL"}
    try:
        gunicorn = _gunicorn()
    except (OSError, subprocess.CalledProcessError) as exc:
        return {"skipped": f"{ALERTA} could not be installed into {VENV}: {exc}"}
    alerta = _alerta_figures(db, gunicorn, _managed_clients(db), _managed_clients(db, VARIED_CLIENTS))
    tenure_batches = intake_http_batches(db, scale)
    tenure_varied = processed_over_http(db, "varied", varied_bodies, VARIED_CLIENTS)
    tenure_single = run.intake_http(db, scale)
    ratio = tenure_batches["processed_per_second"] / alerta["batches"]["processed_per_second"]
    varied_ratio = tenure_varied["processed_per_second"] / alerta["varied_batches"]["processed_per_second"]
    single_ratio = tenure_single["requests_per_second"] / alerta["one_per_request"]["requests_per_second"]
    shown = ("alerts", "processed_per_second", "acknowledged_per_second")
    return {
        "alerta": alerta,
        "tenure": {
            "batches": {k: tenure_batches[k] for k in shown},
            "varied_batches": {k: tenure_varied[k] for k in (*shown, "answers_202", "left_waiting")},
            "one_per_request": {k: tenure_single[k] for k in ("requests", "requests_per_second", "p99_ms")},
        },
        "batches_processed_ratio": round(ratio, 1),
        "varied_batches_processed_ratio": round(varied_ratio, 1),
        "limit_batches_processed_ratio": RATIO,
        "one_per_request_ratio": round(single_ratio, 1),
        "within_limit": min(ratio, varied_ratio) >= RATIO
        and tenure_batches["within_limit"]
        and tenure_varied["left_waiting"] == 0
        and tenure_varied["answers_202"] == tenure_varied["bodies"]
        and tenure_single["within_limit"],
    }

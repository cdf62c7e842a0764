"""A command line that answers at once: `tenure --help`, two reads (`tenure client list --json`, `tenure ticket
list --json`) and the time from `tenure serve` starting to its first healthy `/healthz`, each as a user meets
it: a new process every time.

Registered into bench.registry's table when bench.run loads its plugins. The read and the server work on the
demo MSP (`tenure demo`), loaded into a scratch database of the engine under test (SQLite: a file in
bench/out/; PostgreSQL: `<database>_demo` on the same server), as the issue measured them. Measures only.
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

import bench.run as run
from bench.generate import Scale
from bench.registry import bench
from tenure.db.engine import Database

RUNS = 7  # each figure: the median and the slowest of this many fresh processes, after one to warm the disk
LIMITS = {"help": 0.3, "client_list": 0.6, "ticket_list": 0.6, "serve_healthy": 2.0}  # seconds (issue 21)


def _demo_url(db: Database) -> str:
    if db.is_sqlite:
        path = Path(__file__).parent / "out" / "demo.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    url = make_url(db.url)
    name = f"{url.database}_demo"
    run._recreate_postgresql(db.url, name)
    return url.set(database=name).render_as_string(hide_password=False)


def _seconds(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def _until_healthy(env: dict[str, str]) -> float:
    """Seconds from starting `tenure serve` to its first 200 on /healthz (polled every 10 ms)."""
    port = run.free_port()
    began = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "tenure", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - began < 60:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return time.perf_counter() - began
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("tenure serve was not healthy within 60 s")
    finally:
        server.terminate()
        server.wait(timeout=20)


def _figure(samples: list[float], limit: float) -> dict[str, Any]:
    return {
        "median_seconds": round(statistics.median(samples), 3),
        "max_seconds": round(max(samples), 3),
        "limit_seconds": limit,
        "within_limit": statistics.median(samples) <= limit,
    }


@bench
def command_line(db: Database, scale: Scale) -> dict[str, Any]:
    """`tenure --help`, two reads on the demo (`client list`, `ticket list`) and `tenure serve` until healthy."""
    env = {**os.environ, "TENURE_DATABASE_URL": _demo_url(db)}
    script = Path(sys.executable).parent / "tenure"  # the console script a user types, where it is installed
    tenure = [str(script)] if script.exists() else [sys.executable, "-m", "tenure"]
    subprocess.run([*tenure, "demo"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run.as_installed()
    commands = {
        "help": [*tenure, "--help"],
        "client_list": [*tenure, "client", "list", "--json"],
        "ticket_list": [*tenure, "ticket", "list", "--json"],
    }
    figures: dict[str, Any] = {}
    for name, command in commands.items():
        _seconds(command, env)
        figures[name] = _figure([_seconds(command, env) for _ in range(RUNS)], LIMITS[name])
    figures["serve_healthy"] = _figure([_until_healthy(env) for _ in range(3)], LIMITS["serve_healthy"])
    figures["within_limit"] = all(f["within_limit"] for f in figures.values())
    return figures

"""`tenure serve` listens at once: /healthz answers (503 `starting`, then 200 `ok`) while the application is
built, and a request that arrives that early is answered by the application once it is ready, not refused."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.test_serve_e2e import Server


@pytest.fixture
def server(db, tmp_path):
    srv = Server(db, tmp_path / "home")
    srv.cli("demo")
    yield srv
    srv.kill()


def test_a_request_arriving_while_the_server_starts_is_answered_not_refused(server):
    reader = server.cli("token", "create", "desk", "--role", "technician").strip()
    server.proc = subprocess.Popen(
        [sys.executable, "-m", "tenure", "serve", "--port", str(server.http)],
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    health = None
    deadline = time.monotonic() + 60
    while health is None and time.monotonic() < deadline:
        try:  # the first moment it listens
            health = httpx.get(f"{server.url}/healthz", timeout=5)
        except httpx.HTTPError:
            time.sleep(0.02)
    assert health is not None
    status = "starting" if health.status_code == 503 else "ok"  # the application built yet, or not
    assert health.json() == {"status": status, "oldest_unprocessed_seconds": 0, "unprocessed": 0}
    # straight away, whether or not the application is built yet: the answer is the application's own
    clients = httpx.get(
        f"{server.url}/api/v1/clients", headers={"Authorization": f"Bearer {reader}"}, timeout=60
    ).json()["clients"]
    assert {"acme", "harbor"} <= {c["key"] for c in clients}
    refused = httpx.get(f"{server.url}/api/v1/clients", timeout=60)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    ready = httpx.get(f"{server.url}/healthz", timeout=60)
    assert (ready.status_code, ready.json()["status"]) == (200, "ok")


def test_the_application_builds_without_the_vendor_clients_or_the_vault_library(tmp_path):
    """What `tenure serve` imports before its first healthy answer: the vendor connectors' HTTP client (httpx,
    with its terminal colouring) and the vault's cryptography load when a step or a secret first needs them."""
    from tenure.db.engine import Database

    url = f"sqlite:///{tmp_path / 'probe.db'}"
    Database(url).migrate()  # as a server finds it: migrated before (alembic is not a server's import)
    probe = (
        "import sys\n"
        "from tenure.db.engine import Database\n"
        "from tenure.api.app import create_app\n"
        f"create_app(Database({url!r}))\n"
        "print('LOADED', [m for m in ('httpx', 'cryptography', 'pygments', 'rich') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "LOADED []" in done.stdout, done.stdout + done.stderr

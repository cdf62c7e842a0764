"""`tenure serve` as a user runs it: real HTTP, real SMTP, and a kill -9 in the middle of a burst."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tenure.intake.models import RawPayload

DATA = Path(__file__).parent / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db, home: Path):
        self.http, self.smtp = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
        self.env |= {"TENURE_HOME": str(home), "TENURE_DATABASE_URL": db.url, "TENURE_NOW": "2026-11-24T15:00:00Z"}
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tenure", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tenure", "serve", "--port", str(self.http), "--smtp", f"127.0.0.1:{self.smtp}"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"tenure serve did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)


@pytest.fixture
def server(db, tmp_path):
    srv = Server(db, tmp_path / "home")
    srv.cli("demo")
    yield srv
    srv.kill()


def test_alertmanager_over_http_and_mail_over_smtp_reach_their_decisions(server):
    intake_token = server.cli("token", "create", "alertmanager", "--role", "intake").strip()
    reader = server.cli("token", "create", "desk", "--role", "technician").strip()
    server.start()
    payload = (DATA / "intake/alertmanager_v4.json").read_bytes()
    refused = httpx.post(f"{server.url}/api/v1/intake/alertmanager", content=payload)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    answer = httpx.post(
        f"{server.url}/api/v1/intake/alertmanager",
        content=payload,
        headers={"Authorization": f"Bearer {intake_token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 202 and answer.json()["state"] == "stored"
    # an intake token may only post: reading alerts needs another role
    assert (
        httpx.get(f"{server.url}/api/v1/alerts", headers={"Authorization": f"Bearer {intake_token}"}).status_code == 403
    )

    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = (
        "monitor@acmedental.example",
        "alerts+acme@northwind-msp.example",
        "Printer ACME-WS03 offline",
    )
    mail.set_content("The printer stopped answering at 14:02.")
    with smtplib.SMTP("127.0.0.1", server.smtp, timeout=10) as smtp:
        smtp.send_message(mail)

    deadline, alerts = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        alerts = httpx.get(
            f"{server.url}/api/v1/alerts", params={"client": "acme"}, headers={"Authorization": f"Bearer {reader}"}
        ).json()["alerts"]
        if any(a["title"] == "Printer ACME-WS03 offline" for a in alerts) and len(alerts) >= 3:
            break
        time.sleep(0.2)
    titles = {a["title"]: a["decision"] for a in alerts}
    assert titles.get("Printer ACME-WS03 offline") == "ticket"
    assert sum(1 for a in alerts if a["decision"] == "ticket") >= 3


def test_kill_9_during_a_burst_loses_no_acknowledged_payload(server, db):
    token = server.cli("token", "create", "burst", "--role", "intake").strip()
    server.start()
    acked: list[int] = []
    stop = threading.Event()

    def burst() -> None:
        with httpx.Client(timeout=5) as client:
            for n in range(100_000):
                if stop.is_set():
                    return
                body = json.dumps({"client": "acme", "title": f"probe {n}", "status": "firing", "fingerprint": f"p{n}"})
                try:
                    answer = client.post(
                        f"{server.url}/api/v1/intake/events", content=body, headers={"Authorization": f"Bearer {token}"}
                    )
                except httpx.HTTPError:
                    return
                if answer.status_code == 202:
                    acked.append(answer.json()["payload"])

    sender = threading.Thread(target=burst)
    sender.start()
    deadline = time.monotonic() + 20
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill(signal.SIGKILL)
    stop.set()
    sender.join(timeout=20)
    assert len(acked) >= 150
    with db.reader() as s:
        stored = set(s.scalars(select(RawPayload.id)))
    assert set(acked) <= stored  # every acknowledged payload survived the kill
    server.start()  # and the restarted worker processes what was left
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with db.reader() as s:
            waiting = s.scalars(select(RawPayload.id).where(RawPayload.state == "stored")).all()
        if not waiting:
            break
        time.sleep(0.3)
    assert not waiting

"""A real browser (Debian's Chromium, driven by Playwright) against a real `tenure serve` on a loopback port:
log in, run a billing period and issue an invoice, tick off an offboarding step with a note, close a ticket
from the keyboard, log out. Every request the pages make stays on the server (no CDN)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"
ANSWERS = """\
end_of_service: 2026-12-15
reason: client_cancelled
access: remote
agent_deployment: manual
moving_to: other_msp
new_contact: {name: Ada Stone, email: ada@incoming-msp.example}
delete_data: false
"""

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db: Any, home: Path):
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
        self.env |= {"TENURE_HOME": str(home), "TENURE_DATABASE_URL": db.url, "TENURE_NOW": "2026-11-24T15:00:00Z"}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tenure", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tenure", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("tenure serve did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@pytest.fixture
def server(db, tmp_path) -> Iterator[Server]:
    srv = Server(db, tmp_path / "home")
    srv.cli("demo")
    srv.cli("user", "create", "olive", "--role", "owner", input=PASSWORD + "\n")
    answers = tmp_path / "answers.yaml"
    answers.write_text(ANSWERS)
    srv.cli("offboard", "apply", "maple", "--answers", str(answers))
    srv.start()
    yield srv
    srv.stop()


def flash(page: Page) -> str:
    return page.locator("p.flash").first.inner_text()


def test_log_in_run_billing_tick_off_a_step_and_work_the_queue(server):
    assert Path(CHROMIUM).exists(), "Chromium is needed: apt-get install -y chromium (.ci/run does it)"
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.on(
                "request",
                lambda request: None if request.url.startswith(server.url) else outside.append(request.url),
            )
            page.set_default_timeout(15_000)

            # log in: the dashboard sends us to the log-in form first
            page.goto(f"{server.url}/")
            expect(page).to_have_url(re.compile(r"/login"))
            page.fill("#username", "olive")
            page.fill("#password", "not my password")
            page.click("#login")
            expect(page.locator("#login-error")).to_contain_text("wrong")
            page.fill("#username", "olive")
            page.fill("#password", PASSWORD)
            page.click("#login")
            expect(page.locator("h1")).to_have_text("Dashboard")
            expect(page.locator("svg.chart").first).to_be_visible()
            assert page.locator("link[rel=stylesheet]").get_attribute("href").startswith("/static/")

            # billing: run November, then issue the first draft from its page
            page.click("nav >> text=Billing")
            page.fill("#period", "2026-11")
            page.click("#run-billing")
            assert re.search(r"billing run 2026-11: [1-9]\d* invoice\(s\) made", flash(page)), flash(page)
            page.locator("table.rows tbody a[data-open]").first.click()
            expect(page.locator("#invoice-status")).to_have_text("draft")
            page.click("#invoice-issue")
            expect(page.locator("#invoice-status")).to_have_text("issued")
            assert "is issued" in flash(page)

            # offboarding: tick off the manual licence step with a note
            page.click("nav >> text=Offboarding")
            page.locator("table.rows tbody a[data-open]").first.click()
            expect(page.locator("h1")).to_contain_text("maple")
            page.fill('[data-step-note="p1.licenses"]', "3 licences moved to the pool")
            page.click('[data-step-done="p1.licenses"]')
            assert "p1.licenses done" in flash(page)
            row = page.locator('[id="step-p1.licenses"]')
            expect(row.locator("span.state")).to_have_text("done")
            expect(row).to_contain_text("3 licences moved to the pool")
            expect(row).to_contain_text("user:olive")

            # the triage queue from the keyboard: g t, j (first ticket), c (close it)
            page.keyboard.press("g")
            page.keyboard.press("t")
            expect(page.locator("h1")).to_have_text("Triage queue")
            before = page.locator("table.queue tbody tr[data-ticket]").count()
            assert before >= 1
            first = page.locator("table.queue tbody tr[data-ticket]").first.get_attribute("data-ticket")
            page.keyboard.press("j")
            expect(page.locator("table.queue tbody tr.selected")).to_have_count(1)
            page.keyboard.press("c")
            expect(page.locator("p.flash")).to_contain_text(f"ticket #{first} is closed")
            expect(page.locator("table.queue tbody tr[data-ticket]")).to_have_count(before - 1)

            page.click("#logout")
            expect(page).to_have_url(re.compile(r"/login"))
            page.goto(f"{server.url}/billing")
            expect(page).to_have_url(re.compile(r"/login\?next="))
        finally:
            browser.close()
    assert not outside, f"pages reached outside the server: {outside}"
    status = server.cli("offboard", "status", "maple", "--json")
    assert '"done_by": "user:olive"' in status

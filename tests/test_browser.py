"""A real browser (Debian's Chromium, driven by Playwright) against a real `tenure serve` on a loopback port:
log in, run a billing period and issue an invoice, tick off an offboarding step with a note, close a ticket
from the keyboard, log out. Every request the pages make stays on the server (no CDN)."""

from __future__ import annotations

import json
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
closeout: {date: 2026-12-01, attended: [Ada Stone, Jo Smith], notes: handover agreed}
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
            expect(page.locator("#invoice-status")).to_have_text("Draft")
            page.click("#invoice-issue")
            expect(page.locator("#invoice-status")).to_have_text("Issued")
            assert "is issued" in flash(page)

            # offboarding: tick off the manual licence step with a note
            page.click("nav >> text=Offboarding")
            page.locator("table.rows tbody a[data-open]").first.click()
            expect(page.locator("h1")).to_contain_text("maple")
            page.fill('[data-step-note="p1.licenses"]', "3 licences moved to the pool")
            page.click('[data-step-done="p1.licenses"]')
            assert "p1.licenses done" in flash(page)
            row = page.locator('[id="step-p1.licenses"]')
            expect(row.locator("span.state")).to_have_text("Done")
            expect(row).to_contain_text("3 licences moved to the pool")
            expect(row).to_contain_text("user:olive")

            # the triage queue from the keyboard: g t, j (first ticket), c (close it); the keys are bound once the
            # page's script has run, so a keystroke before `load` would go nowhere on a busy machine
            page.wait_for_load_state("load")
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


def test_a_new_client_gets_an_agreement_a_device_a_contact_and_a_backup_job_then_the_agreement_ends(server):
    """The owner changes things in place from the client's page, each step checked by what the page shows."""
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.on(
                "request",
                lambda request: None if request.url.startswith(server.url) else outside.append(request.url),
            )
            page.on("dialog", lambda dialog: dialog.accept())
            page.set_default_timeout(15_000)
            page.goto(f"{server.url}/login")
            page.fill("#username", "olive")
            page.fill("#password", PASSWORD)
            page.click("#login")
            expect(page.locator("h1")).to_have_text("Dashboard")

            # a new client, from the client list: then its page
            page.click("nav >> text=Clients")
            page.click("#new-client summary")
            page.fill("#client-new-key", "fern")
            page.fill("#client-new-name", "Fern Bakery")
            page.fill("#client-new-domains", "fern.example")
            page.click("#add-client")
            expect(page).to_have_url(re.compile(r"/clients/fern$"))
            expect(page.locator("h1")).to_contain_text("Fern Bakery")
            assert flash(page) == "client fern added: Fern Bakery"
            expect(page.locator("#settings")).to_contain_text("fern.example")

            # an agreement
            page.click("#tab-agreements")
            expect(page.locator("#agreements")).to_have_count(0)
            page.click("#new-agreements summary")
            page.fill("#agreements-new-key", "fern-care")
            page.select_option("#agreements-new-kind", "managed")
            page.fill("#agreements-new-start", "2026-12-01")
            page.fill("#agreements-new-monthly_fee", "300")
            page.fill("#agreements-new-included_hours", "2")
            page.check('#agreements-new-covers input[value="monitoring"]')
            page.check('#agreements-new-covers input[value="remote_support"]')
            page.click("#add-agreements")
            assert flash(page) == "agreement fern-care added"
            row = page.locator('[id="agreements-fern-care"]')
            expect(row).to_contain_text("Managed")
            expect(row).to_contain_text("300.00")
            expect(row).to_contain_text("Monitoring, Remote support")
            expect(row.locator("td.end")).to_have_text("–")

            # time logged on the client's page, then voided with a reason: struck through, counted for nothing
            page.click("#tab-time")
            page.fill('#log-time input[name="minutes"]', "40")
            page.select_option('#log-time select[name="work_type"]', "onsite")
            page.fill('#log-time input[name="note"]', "till setup")
            page.click("#log-time button[type=submit]")
            assert flash(page).startswith("logged 40 min of onsite on 2026-11-24: 45 min billed at "), flash(page)
            entry = page.locator("#time-entries tbody tr", has_text="till setup")
            expect(entry.locator("td.paid")).to_contain_text("billed at")
            expect(page.locator("#time-totals")).to_contain_text("0:40 h logged")
            entry.locator("a[data-edit]").click()
            expect(page.locator("#edit-title")).to_contain_text("Time entry")
            page.click("#void-time")  # no reason yet: the browser itself asks for one, nothing is sent
            expect(page.locator("#edit-title")).not_to_contain_text("voided")
            page.fill("#time-void-reason", "logged on the wrong day")
            page.click("#void-time")
            assert "voided (logged on the wrong day)" in flash(page), flash(page)
            expect(entry).to_have_class("voided")
            expect(entry.locator("td.paid")).to_contain_text("voided logged on the wrong day")
            expect(entry.locator("a[data-edit]")).to_have_count(0)
            expect(page.locator("#time-totals")).to_contain_text("0:00 h logged")
            expect(page.locator("#time-totals")).to_contain_text("1 voided, not counted")

            # a part charged: billed on the next invoice
            page.click("#new-charge summary")
            page.fill("#charge-new-description", "Receipt printer")
            page.fill("#charge-new-amount", "240.00")
            page.fill("#charge-new-cost", "150.00")
            page.click("#add-charge")
            assert flash(page).startswith("charge ch-20261124-1 added: Receipt printer, 240.00"), flash(page)
            expect(page.locator('[id="charges-ch-20261124-1"] td.billed')).to_have_text("next invoice")

            # a device
            page.click("#tab-devices")
            page.click("#new-devices summary")
            page.fill("#devices-new-key", "fern-pos1")
            page.fill("#devices-new-hostname", "FERN-POS1")
            page.select_option("#devices-new-role", "workstation")
            page.fill("#devices-new-os", "Windows 11")
            page.click("#add-devices")
            assert flash(page) == "device fern-pos1 added"
            expect(page.locator('[id="devices-fern-pos1"]')).to_contain_text("FERN-POS1")
            expect(page.locator('[id="devices-fern-pos1"]')).to_contain_text("Windows 11")
            expect(page.locator("p.figures")).to_contain_text("1 devices")

            # a contact, added, then edited
            page.click("#tab-contacts")
            page.click("#new-contacts summary")
            page.fill("#contacts-new-name", "Ana Lee")
            page.fill("#contacts-new-email", "ana@fern.example")
            page.check('#contacts-new-roles input[value="primary"]')
            page.click("#add-contacts")
            assert flash(page) == "contact Ana Lee added"
            page.click('#contacts a[data-edit="Ana Lee"]')
            expect(page.locator("#edit-title")).to_contain_text("Ana Lee")
            page.fill("#contacts-edit-phone", "555-0142")
            page.check('#contacts-edit-roles input[value="billing"]')
            page.click("#save-contacts")
            assert flash(page) == "contact Ana Lee changed"
            row = page.locator("#contacts tbody tr", has_text="Ana Lee")
            expect(row).to_contain_text("555-0142")
            expect(row).to_contain_text("Primary, Billing")

            # a pending backup job: the overview says it waits; the backups tab activates it
            page.click("#tab-backups")
            page.click("#new-backup-jobs summary")
            page.fill("#backup_jobs-new-key", "fern-nas")
            page.fill("#backup_jobs-new-name", "NAS copy")
            page.fill("#backup_jobs-new-product", "synology")
            page.select_option("#backup_jobs-new-device", "fern-pos1")
            page.select_option("#backup_jobs-new-status", "pending")
            page.click("#add-backup_jobs")
            assert flash(page) == "backup job fern-nas added"
            job = page.locator('[id="backup_jobs-fern-nas"]')
            expect(job.locator("span.state")).to_have_text("Pending")
            page.click("#tab-overview")
            expect(page.locator("#pending-jobs")).to_contain_text("1 backup job(s) wait for an answer")
            page.click("#pending-jobs a")
            expect(job.locator("button[data-job-action]")).to_have_text(["Activate", "Pause", "Retire"])
            job.locator('button[data-job-action="activate"]').click()
            assert flash(page) == "backup job fern-nas is active"
            expect(job.locator("span.state")).to_have_text("Active")
            expect(job.locator("button[data-job-action]")).to_have_text(["Pause", "Retire"])
            page.click("#tab-overview")
            expect(page.locator("#pending-jobs")).to_have_count(0)

            # the agreement ends
            page.click("#tab-agreements")
            page.click('#agreements a[data-edit="fern-care"]')
            expect(page.locator("#edit-title")).to_contain_text("fern-care")
            page.fill("#agreements-end-end", "2027-05-31")
            page.click("#end-agreement")
            assert flash(page) == "agreement fern-care ends 2027-05-31"
            expect(page.locator('[id="agreements-fern-care"] td.end')).to_have_text("2027-05-31")

            # and the history says who did all of it
            page.click("#tab-history")
            changes = page.locator("#changes tbody tr")
            expect(changes.first).to_contain_text("user:olive")
            expect(page.locator("#changes")).to_contain_text("fern-care")
            expect(page.locator("#changes")).to_contain_text("2027-05-31")
        finally:
            browser.close()
    assert not outside, f"pages reached outside the server: {outside}"
    shown = server.cli("client", "show", "fern", "--json")
    assert '"fern-care"' in shown and '"2027-05-31"' in shown


def test_start_an_offboarding_from_the_client_page_and_tick_a_devices_steps_at_once(server):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{server.url}/login")
            page.fill("#username", "olive")
            page.fill("#password", PASSWORD)
            page.click("#login")

            # the client's page offers the offboarding; the form explains each answer and checks them
            page.goto(f"{server.url}/clients/willow")
            page.click("#offboard-start")
            expect(page.locator("h1")).to_contain_text("Offboard")
            expect(page.locator('[data-field="security_account"] p.hint')).to_contain_text("logs and alerts")
            page.select_option("#ob-moving_to", "other_msp")
            page.fill("#ob-end_of_service", "2026-11-24")
            page.click("#offboarding-start-submit")
            expect(page.locator('[data-field="new_contact_name"] p.field-problem')).to_contain_text("required")
            page.fill("#ob-new_contact_name", "Ada Stone")
            page.fill("#ob-new_contact_email", "ada@incoming-msp.example")
            page.fill("#ob-closeout_date", "2026-11-20")
            page.fill("#ob-closeout_attended", "Morgan Hale, Olive")
            page.fill("#ob-closeout_notes", "handover agreed")
            page.click("#offboarding-start-submit")
            expect(page.locator("h1")).to_contain_text("Offboarding run")
            expect(page.locator("#run-owner")).to_have_text("user:olive")
            expect(page.locator("#run-closeout")).to_contain_text("Morgan Hale, Olive")

            # approve, then one device's steps at once with one note
            page.click('[data-step-approve="p3.approval"]')
            assert "approved p3.approval" in flash(page)
            page.fill("#bulk-device", "willow-ws01")
            page.fill("#bulk-note", "turned off on site")
            page.click("#bulk-done")
            assert re.search(r"[1-9]\d* step\(s\) of device willow-ws01 done", flash(page)), flash(page)
        finally:
            browser.close()
    status = json.loads(server.cli("offboard", "status", "willow", "--json"))
    mine = [s for s in status["steps"] if s["target"].get("device") == "willow-ws01" and s["state"] == "done"]
    assert mine and all(s["note"] == "turned off on site" and s["done_by"] == "user:olive" for s in mine)

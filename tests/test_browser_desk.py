"""The service desk in a real browser (Chromium by Playwright) against a real `tenure serve`: a phone call opened
from the queue, the ticket's page (a note, assigned, time logged with who pays it, resolved and closed), then
the queue's filters: my tickets, closed ones, breached ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.test_browser import ARGS, CHROMIUM, PASSWORD, server  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow


def flash(page: Page) -> str:
    return page.locator("p.flash").first.inner_text()


def test_a_phone_call_becomes_a_ticket_worked_on_its_page_and_found_in_the_queue(server):  # noqa: F811
    assert Path(CHROMIUM).exists(), "Chromium is needed: apt-get install -y chromium (.ci/run does it)"
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))
            page.set_default_timeout(15_000)
            page.goto(f"{server.url}/login")
            page.fill("#username", "olive")
            page.fill("#password", PASSWORD)
            page.click("#login")
            expect(page.locator("h1")).to_have_text("Dashboard")

            # the queue, and a phone call opened from it
            page.click("nav >> text=Tickets")
            expect(page.locator("h1")).to_have_text("Tickets")
            form = page.locator("#open-ticket-form")
            form.locator("[name=client]").fill("acme")
            form.locator("[name=title]").fill("Phone: reception PC will not boot")
            form.locator("[name=priority]").select_option("P1")
            form.locator("[name=assign_me]").check()
            form.locator("button[type=submit]").click()
            expect(page.locator("#ticket-title")).to_contain_text("Phone: reception PC will not boot")
            number = re.search(r"#(\d+)", page.locator("#ticket-title").inner_text()).group(1)
            expect(page.locator("#ticket-status")).to_have_text("New")
            expect(page.locator("#ticket-assignee")).to_have_text("olive")
            expect(page.locator("#ticket-due")).to_contain_text("due 2026-11-24 19:00")  # managed P1: 4 hours

            # a public note, time logged on it (the page says who pays), resolved, closed
            page.fill("#note-form textarea[name=text]", "Talked the user through a safe-mode boot")
            page.check("#note-form [name=public]")
            page.click("#note-form button[type=submit]")
            expect(page.locator("#ticket-notes")).to_contain_text("Talked the user through a safe-mode boot")
            expect(page.locator("#ticket-notes")).to_contain_text("public")
            page.fill("#ticket-log-time [name=minutes]", "40")
            page.select_option("#ticket-log-time [name=work_type]", "remote_support")
            page.click("#ticket-log-time button[type=submit]")
            assert "logged 40 min of remote_support" in flash(page), flash(page)
            expect(page.locator("#ticket-time tbody")).to_contain_text("included")  # acme's managed hours
            expect(page.locator("#ticket-status")).to_have_text("In progress")
            page.click("#move-resolved")
            expect(page.locator("#ticket-status")).to_have_text("Resolved")
            page.click("#move-close")
            expect(page.locator("#ticket-status")).to_have_text("Closed")

            # the queue: not among the active ones; found among the closed and in my tickets
            page.goto(f"{server.url}/tickets")
            expect(page.locator(f'#ticket-queue tr[data-ticket="{number}"]')).to_have_count(0)
            page.select_option("#ticket-filters [name=status]", "closed")
            page.click("#ticket-filters button[type=submit]")
            expect(page.locator(f'#ticket-queue tr[data-ticket="{number}"]')).to_have_count(1)
            page.click("#my-tickets")
            expect(page.locator("h1")).to_have_text("My tickets")
            page.select_option("#ticket-filters [name=status]", "all")
            page.click("#ticket-filters button[type=submit]")
            expect(page.locator("#ticket-queue tbody tr[data-ticket]")).to_have_count(1)
            page.goto(f"{server.url}/tickets?priority=P1&status=all")
            expect(page.locator(f'#ticket-queue tr[data-ticket="{number}"]')).to_have_count(1)
        finally:
            browser.close()
    assert not outside, f"pages reached outside the server: {outside}"
    shown = json.loads(server.cli("ticket", "show", number, "--json"))
    assert shown["status"] == "closed" and shown["minutes"] == 40 and shown["notes"][0]["author"] == "olive"

"""Proactive maintenance in the API and on the page, over the same functions as `tenure maintenance …`: what
is due (the same items the service finds), the plans, a task changed by a technician (and seen by the command
line), refused to a readonly user, and a refused change shown again with what was typed."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tenure import clock
from tenure.accounts import users
from tenure.accounts.users import create_user, create_user_token, log_in
from tenure.api.app import create_app
from tenure.book.service import import_book
from tenure.maintenance import service as maintenance
from tenure.web.routes import SESSION_COOKIE
from tests.books import small

PASSWORD = "a long enough password"
NOW = "2026-12-02T15:00:00Z"  # a Wednesday, 09:00 in Chicago: acme's monthly tasks are due
ROLES = ("owner", "technician", "readonly")


def book() -> dict[str, Any]:
    """small()'s acme (managed) and bravo (retainer: no plan), and cedar, a call-before-service client."""
    data = small()
    data["clients"].append(
        {
            "key": "cedar",
            "name": "Cedar Law",
            "contacts": [{"name": "Ann Cedar", "email": "ann@cedarlaw.example", "roles": ["primary"]}],
            "agreements": [
                {
                    "key": "cedar-cbs",
                    "kind": "call_before_service",
                    "start": "2026-06-01",
                    "monthly_fee": "150.00",
                    "hourly_rate": "127.25",
                    "covers": ["monitoring", "backup_monitoring"],
                }
            ],
        }
    )
    return data


@pytest.fixture
def shop(db, monkeypatch) -> Any:
    """The book, a user per role with a browser signed in and an API token, and the app."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, book())
    clock.set_now(NOW)
    app = create_app(db)
    people: dict[str, Any] = {}
    for role in ROLES:
        create_user(db, role, PASSWORD, role)
        token, _ = create_user_token(db, f"{role}-token", None, role)
        opened = log_in(db, role, PASSWORD, "127.0.0.1")
        browser = TestClient(app, base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
        people[role] = {"browser": browser, "csrf": opened.csrf, "auth": {"Authorization": f"Bearer {token}"}}
    with TestClient(app) as http:
        yield {"db": db, "http": http, "people": people}


def due_rows(page: str) -> set[tuple[str, str]]:
    """(client, task) of each row of the page's due table."""
    table = page.split('id="due-rows"', 1)[1].split("</table>", 1)[0]
    return set(re.findall(r'<tr data-client="([^"]+)" data-task="([^"]+)"', table))


def visible(page: str) -> str:
    """The page's main text, as read (no tags, no attributes)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.split("<main", 1)[1])).split())


def default_task(shown: dict[str, Any], kind: str, key: str) -> dict[str, Any]:
    return next(t for t in shown["defaults"][kind] if t["key"] == key)


def test_the_page_and_the_api_list_what_the_service_finds_due(shop):
    db, http = shop["db"], shop["http"]
    reader = shop["people"]["readonly"]
    expected = maintenance.run_due(db, dry_run=True).as_json()
    assert {d["client"] for d in expected["due"]} == {"acme", "cedar"}  # bravo's retainer has no plan

    answer = http.get("/api/v1/maintenance/due", headers=reader["auth"])
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert listed["due"] == expected["due"] and listed["month"] == expected["month"] == "2026-12"
    assert listed["total"] == len(expected["due"]) and listed["next_offset"] is None
    assert listed["tickets_opened"] == 0 and listed["notices_written"] == 0  # looking makes nothing

    page = reader["browser"].get("/maintenance")
    assert page.status_code == 200, page.text[:500]
    assert due_rows(page.text) == {(d["client"], d["task"]) for d in expected["due"]}
    assert '<a href="/clients/acme" data-open>acme</a>' in page.text  # the client linked
    assert "a billable ticket (not covered by the agreement)" in page.text  # acme's malware check is excluded
    assert "an item of the monthly notice: done if the client approves it" in page.text  # cedar's patches
    shown = visible(page.text)
    assert "Call before service" in shown and "call_before_service" not in shown  # vocabulary in words

    # one client: the same filter in both shells
    only = http.get("/api/v1/maintenance/due?client=cedar", headers=reader["auth"]).json()["due"]
    assert only == [d for d in expected["due"] if d["client"] == "cedar"]
    page = reader["browser"].get("/maintenance?client=cedar")
    assert due_rows(page.text) == {("cedar", d["task"]) for d in only}
    assert "cedar's plan (Call before service, agreement cedar-cbs)" in visible(page.text)
    assert http.get("/api/v1/maintenance/due?client=nobody", headers=reader["auth"]).status_code == 404
    assert reader["browser"].get("/maintenance?client=nobody").status_code == 404

    # once the worker has made them, the page says where each stands
    maintenance.run_due(db)
    page = reader["browser"].get("/maintenance?client=acme")
    assert re.search(r'<a href="/tickets/\d+">ticket #\d+</a> New', page.text)
    page = reader["browser"].get("/maintenance?client=cedar")
    assert "no answer yet" in page.text


def test_the_plans_in_the_api_and_on_the_page(shop, cli):
    http = shop["http"]
    reader = shop["people"]["readonly"]
    shown = http.get("/api/v1/maintenance/plan", headers=reader["auth"]).json()
    assert shown == json.loads(cli("maintenance", "plan", "--json", "--now", NOW).stdout)
    assert {"managed", "call_before_service"} <= set(shown["defaults"])
    acme = http.get("/api/v1/maintenance/plan?client=acme", headers=reader["auth"]).json()
    assert acme["plan"] == "managed" and acme["agreement"] == "acme-managed"

    page = reader["browser"].get("/maintenance")
    assert "Default plans" in page.text and "Managed" in page.text
    assert default_task(shown, "managed", "patches")["schedule"] in page.text
    assert "every client follows the default plan" in page.text
    assert 'action="/maintenance/tasks/' not in page.text and "data-edit=" not in page.text  # readonly: no form
    # the client's page leads to its plan
    assert 'href="/maintenance?client=acme#plan"' in reader["browser"].get("/clients/acme").text


def test_a_technician_changes_a_tasks_schedule_on_the_page_and_the_command_line_shows_it(shop, cli):
    tech = shop["people"]["technician"]
    browser = tech["browser"]
    form = browser.get("/maintenance?kind=managed&edit=patches")
    assert 'id="task-edit-form"' in form.text and 'name="kind" value="managed"' in form.text
    assert 'value="RRULE:FREQ=MONTHLY;BYDAY=2WE"' in form.text  # the form starts from the task as it is

    every_first = "RRULE:FREQ=MONTHLY;BYMONTHDAY=1"
    sent = {
        "csrf": tech["csrf"],
        "kind": "managed",
        "title": "Monthly patches on servers and workstations",
        "schedule": every_first,
        "estimate_minutes": "75",
        "service": "patching",
        "technician": "terry",
        "active": "1",
    }
    saved = browser.post("/maintenance/tasks/patches", data=sent, follow_redirects=False)
    assert saved.status_code == 303, saved.text[:800]
    assert "saved" in browser.get(saved.headers["location"]).text

    shown = json.loads(cli("maintenance", "plan", "--json").stdout)
    patches = default_task(shown, "managed", "patches")
    assert patches["schedule"] == every_first and patches["estimate_minutes"] == 75
    assert patches["technician"] == "terry" and patches["title"] == sent["title"]

    # with a client chosen, the change is the client's own; the page lists the client as having its own plan
    own = sent | {"kind": "", "client": "acme", "schedule": "0 7 * * 1", "technician": ""}
    assert browser.post("/maintenance/tasks/patches", data=own, follow_redirects=False).status_code == 303
    acme = json.loads(cli("maintenance", "plan", "--client", "acme", "--json").stdout)
    mine = next(t for t in acme["tasks"] if t["key"] == "patches")
    assert mine["own"] and mine["schedule"] == "0 7 * * 1" and not mine["technician"]
    page = browser.get("/maintenance")
    assert 'href="/maintenance?client=acme#plan">Acme Dental</a>' in page.text

    # switched off (the box left unticked)
    off = sent | {"schedule": every_first}
    del off["active"]
    assert browser.post("/maintenance/tasks/patches", data=off, follow_redirects=False).status_code == 303
    assert not default_task(json.loads(cli("maintenance", "plan", "--json").stdout), "managed", "patches")["active"]


def test_a_readonly_user_may_not_change_a_task(shop):
    db, http, people = shop["db"], shop["http"], shop["people"]
    before = maintenance.show_plan(db)
    reader = people["readonly"]
    data = {"csrf": reader["csrf"], "kind": "managed", "title": "x", "schedule": "0 7 * * 1"}
    data |= {"estimate_minutes": "30", "service": "patching"}
    refused = reader["browser"].post("/maintenance/tasks/patches", data=data, follow_redirects=False)
    assert refused.status_code == 403 and "may not" in refused.text
    body = {"kind": "managed", "schedule": "0 7 * * 1"}
    answer = http.patch("/api/v1/maintenance/tasks/patches", json=body, headers=reader["auth"])
    assert answer.status_code == 403, answer.text
    assert maintenance.show_plan(db) == before

    # a technician may, through the API too
    answer = http.patch("/api/v1/maintenance/tasks/patches", json=body, headers=people["technician"]["auth"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["schedule"] == "0 7 * * 1" and not answer.json()["created"]
    assert default_task(maintenance.show_plan(db), "managed", "patches")["schedule"] == "0 7 * * 1"
    mine = http.patch(
        "/api/v1/maintenance/tasks/patches", json={"client": "acme", "active": False}, headers=people["owner"]["auth"]
    )
    assert mine.status_code == 200 and mine.json()["created"] and mine.json()["active"] is False


def test_a_refused_change_keeps_what_was_typed_and_names_the_field(shop):
    db, http = shop["db"], shop["http"]
    tech = shop["people"]["technician"]
    before = maintenance.show_plan(db)
    typed = {
        "csrf": tech["csrf"],
        "kind": "managed",
        "title": "Patches, my way",
        "schedule": "every second tuesday",
        "estimate_minutes": "45",
        "service": "patching",
        "technician": "terry",
        "active": "1",
    }
    page = tech["browser"].post("/maintenance/tasks/patches", data=typed, follow_redirects=False)
    assert page.status_code == 422, page.text[:800]
    text = html.unescape(page.text)
    assert 'value="every second tuesday"' in text and 'value="Patches, my way"' in text and 'value="45"' in text
    schedule = re.search(r'<div class="field wide invalid" data-field="schedule">(.*?)</div>', text, re.S)
    assert schedule and 'aria-invalid="true"' in schedule.group(1) and "field-problem" in schedule.group(1)
    form = text.split('id="task-edit-form"', 1)[1].split("</form>", 1)[0]
    assert form.count('aria-invalid="true"') == 1  # only the schedule is marked
    bad_minutes = tech["browser"].post(
        "/maintenance/tasks/patches", data=typed | {"schedule": "0 7 * * 1", "estimate_minutes": "an hour"}
    )
    assert bad_minutes.status_code == 422 and 'value="an hour"' in bad_minutes.text
    assert 'data-field="estimate_minutes"' in bad_minutes.text.split('class="field invalid"', 1)[1][:60]
    too_long = tech["browser"].post("/maintenance/tasks/patches", data=typed | {"title": "x" * 301})
    assert too_long.status_code == 422 and "at most 300 characters" in too_long.text
    assert maintenance.show_plan(db) == before  # nothing saved

    # the API names the field too
    auth = tech["auth"]
    bad = http.patch(
        "/api/v1/maintenance/tasks/patches", json={"kind": "managed", "schedule": "sometimes"}, headers=auth
    )
    assert bad.status_code == 422 and [p["name"] for p in bad.json()["invalid-params"]] == ["schedule"]
    bad = http.patch("/api/v1/maintenance/tasks/patches", json={"kind": "managed", "estimate_minutes": 0}, headers=auth)
    assert bad.status_code == 422 and "estimate_minutes" in bad.json()["invalid-params"][0]["name"]
    bad = http.patch("/api/v1/maintenance/tasks/patches", json={"schedule": "0 7 * * 1"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["invalid-params"][0]["name"] == "client"
    missing = http.patch("/api/v1/maintenance/tasks/patches", json={"client": "nobody"}, headers=auth)
    assert missing.status_code == 404
    assert maintenance.show_plan(db) == before


# ------------------------------------------------------------------------------------- in a real browser


@pytest.mark.slow
def test_the_page_fits_a_phone_and_its_form_works_in_a_browser(db, tmp_path):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect, sync_playwright

    from tests.test_browser import ARGS, CHROMIUM, Server
    from tests.test_browser import PASSWORD as BROWSER_PASSWORD

    server = Server(db, tmp_path / "home")
    server.cli("demo")
    server.cli("user", "create", "tess", "--role", "technician", input=BROWSER_PASSWORD + "\n")
    problems: list[str] = []
    try:
        server.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 390, "height": 844})
                page.set_default_timeout(15_000)
                page.goto(f"{server.url}/login")
                page.fill("#username", "tess")
                page.fill("#password", BROWSER_PASSWORD)
                page.click("#login")
                expect(page.locator("h1")).to_have_text("Dashboard")
                for path in ("/maintenance", "/maintenance?client=acme", "/maintenance?kind=managed&edit=patches"):
                    page.goto(server.url + path)
                    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                    if wide > 0:
                        problems.append(f"{path} scrolls sideways by {wide}px at 390px")
                    found = Axe().run(page).response["violations"]
                    serious = [v for v in found if v["impact"] in ("serious", "critical")]
                    problems += [f"{path}: {v['id']} {[n['target'] for n in v['nodes']][:3]}" for v in serious]
                # a refused change, then the right one, as a person types them
                page.fill("#task-schedule", "now and then")
                page.click("#save-task")
                expect(page.locator("#task-schedule")).to_have_value("now and then")
                expect(page.locator("#task-schedule")).to_have_attribute("aria-invalid", "true")
                page.fill("#task-schedule", "RRULE:FREQ=MONTHLY;BYMONTHDAY=3")
                page.click("#save-task")
                expect(page.locator("p.flash")).to_contain_text("saved")
                expect(page.locator("#plan")).to_contain_text("RRULE:FREQ=MONTHLY;BYMONTHDAY=3")
            finally:
                browser.close()
    finally:
        server.stop()
    assert not problems, problems


def test_what_is_due_comes_in_pages_read_a_few_clients_at_a_time(shop, monkeypatch):
    """A page of what is due reads the clients' plans a chunk at a time (here one client per chunk) and
    pages through the same items, in client order, as the whole dry run lists."""
    db, http = shop["db"], shop["http"]
    auth = shop["people"]["readonly"]["auth"]
    whole = maintenance.run_due(db, dry_run=True).as_json()["due"]
    expected = sorted(whole, key=lambda d: d["client"])  # clients in key order, each one's tasks as planned
    monkeypatch.setattr(maintenance, "DUE_CHUNK", 1)
    seen, offset = [], 0
    while offset is not None:
        page = http.get(f"/api/v1/maintenance/due?limit=2&offset={offset}", headers=auth).json()
        assert len(page["due"]) <= 2
        seen += page["due"]
        offset = page["next_offset"]
    assert seen == expected and page["total"] == len(expected) and page["total_exact"]
    first = shop["people"]["readonly"]["browser"].get("/maintenance")
    assert due_rows(first.text) == {(d["client"], d["task"]) for d in expected}

"""The outbox in every shell: `/api/v1/outbox`, the page at /settings/outbox and `tenure notices`, over the
same services, against a real SMTP server on loopback (aiosmtpd). A mail that failed (an invoice mail among
them) shows as failed with its error; a technician sends it again once the server is up, and it arrives
once; a read-only user sees it all and may send nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tenure import clock
from tenure.accounts import users
from tenure.accounts.service import create_token
from tenure.accounts.users import create_user, log_in
from tenure.api.app import create_app
from tenure.billing import mailing
from tenure.billing.service import run_billing
from tenure.book.service import import_book
from tenure.notices import outbox
from tenure.web.routes import SESSION_COOKIE
from tests.test_invoices_out import book, numbers_by_client
from tests.test_outbox import Server, free_port, record

PASSWORD = "a long enough password"
STAFF = ("owner", "technician", "bookkeeper", "readonly")
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"  # > 0: scrolls sideways


@pytest.fixture
def smtp(monkeypatch):
    """A mail server that is down until the test starts it."""
    server = Server(free_port())
    monkeypatch.setenv("TENURE_SMTP_URL", f"smtp://127.0.0.1:{server.port}")
    monkeypatch.setenv("TENURE_MAIL_FROM", "it@example-it.example")
    monkeypatch.setenv("TENURE_STAFF_EMAIL", "desk@example-it.example")
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    yield server
    server.stop()


@pytest.fixture
def office(db, monkeypatch) -> dict[str, Any]:
    """Acme and friends with December's invoices drafted; per staff role a user, an API client with its
    token and a signed-in browser."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, book())
    clock.set_now("2026-12-02T15:00:00Z")
    run_billing(db, "2026-12")
    app = create_app(db)
    api: dict[str, TestClient] = {}
    web: dict[str, tuple[TestClient, str]] = {}
    for role in STAFF:
        create_user(db, role, PASSWORD, role)
        token, _ = create_token(db, f"{role}-script", role)
        api[role] = TestClient(app, headers={"Authorization": f"Bearer {token}"})
        opened = log_in(db, role, PASSWORD, "127.0.0.1")
        browser = TestClient(app, base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
        web[role] = (browser, opened.csrf)
    return {"db": db, "api": api, "web": web}


def flash(response: Any) -> str:
    found = re.search(r'class="flash (?:ok|error)"[^>]*>(.*?)</p>', response.text)
    return found.group(1) if found else ""


def row_of(page: str, notice: int) -> str:
    found = re.search(rf'<tr data-notice="{notice}".*?</tr>', page, re.S)
    assert found, page[-3000:]
    return found.group(0)


def test_a_failed_mail_shows_with_its_error_and_a_technician_sends_it_once_the_server_is_up(office, smtp, monkeypatch):
    db, api, web = office["db"], office["api"], office["web"]
    acme_invoice = numbers_by_client(db)["acme"]
    invoice_mail = mailing.issue_one(db, acme_invoice)["mail"]["notice"]  # the invoice's mail, in the outbox
    alert = record(db, subject="Acme Dental: backup failed")
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 1)  # the server is down: one attempt, then failed for good
    assert api["owner"].post("/api/v1/outbox/send").json() | {"messages": []} == {
        "sent": 0, "failed": 2, "waiting": 0, "kept": 0, "waiting_because": None, "messages": [],
    }  # fmt: skip

    # everyone sees it failed, with its error: the API ...
    listed = api["readonly"].get("/api/v1/outbox", params={"state": "failed"})
    assert listed.status_code == 200 and listed.json()["total"] == 2
    by_id = {m["id"]: m for m in listed.json()["messages"]}
    assert list(by_id) == [alert, invoice_mail]  # newest first
    for m in by_id.values():
        assert m["state"] == "failed" and m["attempts"] == 1 and m["sent_at"] is None and m["next_attempt_at"] is None
        assert m["error"].startswith("gave up after 1 attempts: cannot reach smtp://127.0.0.1")
        assert m["client"] == "acme"
    assert by_id[invoice_mail]["kind"] == "invoice" and by_id[invoice_mail]["invoice"] == acme_invoice
    assert by_id[invoice_mail]["to"] == ["jo@acmedental.example"]
    assert by_id[alert]["subject"] == "Acme Dental: backup failed" and by_id[alert]["invoice"] is None
    one = api["readonly"].get(f"/api/v1/outbox/{invoice_mail}").json()
    assert acme_invoice in one["body_text"] and one["preview"] is False and one["state"] == "failed"

    # ... and the page, with the count on the navigation's Settings link
    browser, _ = web["readonly"]
    page = browser.get("/settings/outbox", params={"state": "failed"})
    assert page.status_code == 200
    failed_row = row_of(page.text, invoice_mail)
    assert "Failed" in failed_row and "cannot reach smtp://127.0.0.1" in failed_row
    assert '<a href="/clients/acme">acme</a>' in failed_row and f"invoice {acme_invoice}" in failed_row
    assert "Retry" not in page.text and "Send what is due now" not in page.text  # a read-only user sends nothing
    assert re.search(r'href="/settings"[^>]*>Settings <span class="count" title="2 mail failed">', page.text)
    shown = browser.get(f"/settings/outbox/{invoice_mail}")
    assert shown.status_code == 200 and acme_invoice in shown.text and "gave up after 1 attempts" in shown.text
    assert f'href="/invoices/{acme_invoice}"' in shown.text

    # a read-only user may not send it again, on the API or the page
    assert api["readonly"].post(f"/api/v1/outbox/{invoice_mail}/retry").status_code == 403
    assert api["readonly"].post("/api/v1/outbox/send").status_code == 403
    browser, csrf = web["readonly"]
    refused = browser.post(f"/settings/outbox/{invoice_mail}/retry", data={"csrf": csrf}, follow_redirects=False)
    assert refused.status_code == 403 and "may not" in refused.text
    assert browser.post("/settings/outbox/send", data={"csrf": csrf}, follow_redirects=False).status_code == 403

    # the server is up: a technician sends both again (one from the API, one from the page), each arrives once
    smtp.start()
    retried = api["technician"].post(f"/api/v1/outbox/{invoice_mail}/retry")
    assert retried.status_code == 200
    assert retried.json() | {"created_at": None} == by_id[invoice_mail] | {
        "state": "waiting", "attempts": 0, "error": None, "created_at": None,
    }  # fmt: skip
    browser, csrf = web["technician"]
    page = browser.get("/settings/outbox?state=failed")
    assert f'id="retry-{alert}"' in row_of(page.text, alert)
    back = "/settings/outbox?state=failed"
    answer = browser.post(f"/settings/outbox/{alert}/retry", data={"csrf": csrf, "back": back}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == back
    assert f"message #{alert} goes out with the next send" in flash(browser.get(back))
    assert smtp.inbox.received == []  # queued, not sent: the worker (or "send what is due now") sends it
    sent = api["technician"].post("/api/v1/outbox/send").json()
    assert (sent["sent"], sent["failed"], sent["waiting"]) == (2, 0, 0)
    subjects = sorted(m["Subject"] for _, m in smtp.inbox.received)
    assert len(subjects) == 2 and subjects[0] == "Acme Dental: backup failed" and acme_invoice in subjects[1]
    assert api["technician"].post("/api/v1/outbox/send").json()["sent"] == 0  # nothing twice

    shown = api["readonly"].get(f"/api/v1/outbox/{invoice_mail}").json()
    assert shown["state"] == "sent" and shown["sent_at"] and shown["error"] is None and shown["attempts"] == 1
    # sent is sent: a retry is a conflict (409 on the API, a message on the page); an unknown id is 404
    again = api["technician"].post(f"/api/v1/outbox/{invoice_mail}/retry")
    assert again.status_code == 409 and "is sent" in again.json()["detail"]
    assert api["technician"].post("/api/v1/outbox/999999/retry").status_code == 404
    assert api["readonly"].get("/api/v1/outbox/999999").status_code == 404
    answer = browser.post(f"/settings/outbox/{alert}/retry", data={"csrf": csrf})
    assert answer.status_code == 200 and "is sent: only a failed or kept notice" in flash(answer)
    assert browser.get("/settings/outbox/999999").status_code == 404
    page = browser.get("/settings/outbox").text
    assert 'class="count" title=' not in page.split('href="/settings"')[1].split("</a>")[0]  # nothing failed now
    assert "Retry" not in row_of(page, alert) and "Sent" in row_of(page, alert)


def test_a_waiting_mail_goes_now_on_request_and_the_page_sends_what_is_due(office, smtp):
    db, api, web = office["db"], office["api"], office["web"]
    notice = record(db)
    first = api["bookkeeper"].post("/api/v1/outbox/send").json()
    assert (first["sent"], first["waiting"]) == (0, 1)  # the server is down: tried again in a minute
    waiting = api["readonly"].get(f"/api/v1/outbox/{notice}").json()
    assert waiting["state"] == "waiting" and waiting["attempts"] == 1 and "cannot reach" in waiting["error"]
    assert waiting["next_attempt_at"] == "2026-12-02T15:01:00+00:00"
    browser, csrf = web["bookkeeper"]
    assert "next try 2026-12-02 15:01" in row_of(browser.get("/settings/outbox").text, notice)
    assert f'id="retry-{notice}"' in row_of(browser.get("/settings/outbox").text, notice)  # "Send now"

    smtp.start()
    assert outbox.send_due(db).results == []  # not due yet
    now = api["bookkeeper"].post(f"/api/v1/outbox/{notice}/retry").json()
    assert now["state"] == "waiting" and now["next_attempt_at"] is None and now["attempts"] == 1
    answer = browser.post("/settings/outbox/send", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/settings/outbox"
    assert flash(browser.get("/settings/outbox")).startswith("1 sent, 0 failed")
    assert len(smtp.inbox.received) == 1
    assert api["readonly"].get(f"/api/v1/outbox/{notice}").json()["state"] == "sent"


def test_without_mail_settings_sending_says_why_nothing_moved(office, monkeypatch):
    monkeypatch.delenv("TENURE_SMTP_URL", raising=False)
    record(office["db"])
    answer = office["api"]["owner"].post("/api/v1/outbox/send").json()
    assert answer["sent"] == 0 and "TENURE_SMTP_URL" in answer["waiting_because"]
    browser, csrf = office["web"]["owner"]
    page = browser.post("/settings/outbox/send", data={"csrf": csrf})
    assert page.status_code == 200 and "nothing was sent" in flash(page) and "TENURE_SMTP_URL" in flash(page)


def test_the_list_is_paged_and_filtered_by_state_client_and_kind(office):
    db, api, web = office["db"], office["api"], office["web"]
    numbers = numbers_by_client(db)
    for client in ("acme", "cedar", "dune"):
        mailing.issue_one(db, numbers[client])
    alert = record(db)
    http = api["readonly"]
    first = http.get("/api/v1/outbox", params={"limit": 2}).json()
    assert first["total"] == 4 and first["next_offset"] == 2 and first["messages"][0]["id"] == alert
    rest = http.get("/api/v1/outbox", params={"limit": 2, "offset": 2}).json()
    assert rest["next_offset"] is None and len(rest["messages"]) == 2
    ids = [m["id"] for m in first["messages"] + rest["messages"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    invoices = http.get("/api/v1/outbox", params={"kind": "invoice"}).json()
    assert sorted(m["invoice"] for m in invoices["messages"]) == sorted(numbers[c] for c in ("acme", "cedar", "dune"))
    cedar = http.get("/api/v1/outbox", params={"client": "cedar"}).json()["messages"]
    assert [m["to"] for m in cedar] == [["books@cedarlaw.example"]]  # its billing contact
    assert http.get("/api/v1/outbox", params={"state": "waiting"}).json()["total"] == 4
    assert http.get("/api/v1/outbox", params={"state": "sent"}).json()["total"] == 0
    assert http.get("/api/v1/outbox", params={"state": "lost"}).status_code == 422
    assert http.get("/api/v1/outbox", params={"client": "nobody"}).status_code == 404

    browser, _ = web["readonly"]
    page = browser.get("/settings/outbox", params={"kind": "invoice"}).text
    assert page.count("<tr data-notice=") == 3 and 'data-state="waiting"' in page
    assert re.search(r'data-state="waiting"[^>]*>Waiting <span class="muted">\(4\)', page)  # the state tabs
    assert 'aria-label="settings"' in page and 'href="/settings/outbox" class="current"' in page
    mistyped = browser.get("/settings/outbox", params={"client": "nobody"})
    assert mistyped.status_code == 200 and "no client &#39;nobody&#39;" in mistyped.text
    assert browser.get("/settings/outbox", params={"state": "lost"}).status_code == 422


def test_the_command_line_lists_shows_and_retries_the_same_outbox(office, cli):
    db = office["db"]
    notice = record(db)
    listed = json.loads(cli("notices", "list", "--json").stdout)["notices"]
    assert [n["id"] for n in listed] == [notice]
    shown = json.loads(cli("notices", "show", str(notice), "--json").stdout)
    assert shown["state"] == "waiting" and shown["next_attempt_at"] is None
    now = json.loads(cli("notices", "retry", str(notice), "--json").stdout)  # a waiting one: sent now
    assert now["state"] == "waiting"
    with db.unit_of_work() as s:
        from tenure.notices.models import Notice

        s.get(Notice, notice).state = "sent"
    refused = cli("notices", "retry", str(notice), check=False)
    assert refused.returncode != 0 and "only a failed or kept notice" in refused.stderr


# ------------------------------------------------------------------------------------------ in a browser


@pytest.mark.slow
def test_the_outbox_page_fits_a_phone_and_retries_from_it(db, tmp_path):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import select

    from tenure.notices.models import Notice
    from tests.test_browser import ARGS, CHROMIUM
    from tests.test_browser import PASSWORD as BROWSER_PASSWORD
    from tests.test_browser import Server as Tenure
    from tests.test_browser_shell import serious

    tenure = Tenure(db, tmp_path / "home")
    tenure.cli("demo")
    tenure.cli("user", "create", "olive", "--role", "owner", input=BROWSER_PASSWORD + "\n")
    long_address = "someone.with.a.very.long.address.indeed@accounting-department.acmedental.example"
    failed = record(db, to=(long_address,))
    with db.unit_of_work() as s:  # what a server refusing it for good leaves
        notice = s.scalars(select(Notice).where(Notice.id == failed)).one()
        notice.state, notice.attempts = "failed", 1
        notice.error = (
            "550 5.1.1 <someone.with.a.very.long.address.indeed@accounting-department.acmedental.example>: no such user"
        )
    problems: list[str] = []
    try:
        tenure.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for width, height in ((390, 844), (1440, 900)):
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.set_default_timeout(15_000)
                    page.goto(f"{tenure.url}/login")
                    page.fill("#username", "olive")
                    page.fill("#password", BROWSER_PASSWORD)
                    page.click("#login")
                    expect(page.locator("h1")).to_have_text("Dashboard")
                    for path in ("/settings/outbox", "/settings/outbox?state=failed", f"/settings/outbox/{failed}"):
                        page.goto(tenure.url + path)
                        wide = page.evaluate(
                            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                        )
                        if wide > 0:
                            problems.append(f"{path} at {width}px scrolls sideways by {wide}px")
                        problems.extend(f"{path} at {width}px: {v}" for v in serious(page, Axe()))
                    page.close()
                page = browser.new_page(viewport={"width": 390, "height": 844})
                page.goto(f"{tenure.url}/login")
                page.fill("#username", "olive")
                page.fill("#password", BROWSER_PASSWORD)
                page.click("#login")
                page.goto(f"{tenure.url}/settings/outbox?state=failed")
                page.click(f"#retry-{failed}")
                expect(page.locator(".flash")).to_contain_text(f"message #{failed} goes out with the next send")
                expect(page.locator(f'tr[data-notice="{failed}"]')).to_have_count(0)  # no longer failed
            finally:
                browser.close()
    finally:
        tenure.stop()
    assert not problems, "\n".join(problems)

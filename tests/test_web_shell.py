"""The frame every page lives in (issue 20): the search box and its answers (pages and API), the navigation's
counts and marks, error pages that keep the navigation, words instead of codes, money with separators, the
API's docs served offline."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenure import clock
from tenure.accounts.service import create_token
from tenure.accounts.users import create_user, log_in
from tenure.api.app import create_app
from tenure.book.demo import load_demo
from tenure.web.common import money
from tenure.web.routes import SESSION_COOKIE
from tenure.web.words import words

NOW = "2026-11-24T15:00:00Z"
PASSWORD = "a long enough password"
JSON = {"Accept": "application/json"}


@pytest.fixture
def office(db) -> Any:
    clock.set_now(NOW)
    load_demo(db)
    app = create_app(db)
    create_user(db, "olive", PASSWORD, "owner")
    create_user(db, "rita", PASSWORD, "readonly")
    opened = log_in(db, "rita", PASSWORD, "127.0.0.1")
    browser = TestClient(app, base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
    yield {"db": db, "app": app, "browser": browser}
    clock.set_now(None)


def kinds(hits: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(h["kind"], h["label"]) for h in hits}


def test_the_search_box_finds_a_client_by_part_of_its_name_and_a_device_by_its_hostname(office):
    browser = office["browser"]
    found = browser.get("/search", params={"q": "dent"}, headers=JSON).json()
    assert ("client", "Acme Dental") in kinds(found["hits"])
    client = next(h for h in found["hits"] if h["label"] == "Acme Dental")
    assert client["page"] == "/clients/acme" and browser.get(client["page"]).status_code == 200

    device = browser.get("/search", params={"q": "acme-srv0"}, headers=JSON).json()["hits"]
    assert ("device", "ACME-SRV01") in kinds(device)
    assert all(h["kind"] == "device" for h in device)
    assert next(h for h in device if h["label"] == "ACME-SRV01")["page"] == "/clients/acme?tab=devices"

    contact = browser.get("/search", params={"q": "reyes"}, headers=JSON).json()["hits"]
    assert ("contact", "Sam Reyes") in kinds(contact)


def test_without_a_script_the_search_is_a_page_of_its_own_with_the_navigation(office):
    page = office["browser"].get("/search", params={"q": "Acme"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="search-hits"' in page.text and "Acme Dental" in page.text
    assert 'aria-label="main"' in page.text and 'action="/search"' in page.text
    nothing = office["browser"].get("/search", params={"q": "zzzz-nothing"})
    assert "Nothing found for" in nothing.text


def test_the_api_answers_the_same_search_for_a_token(office):
    token, _ = create_token(office["db"], "script", "readonly")
    http = TestClient(office["app"], base_url="http://testserver")
    answer = http.get("/api/v1/search", params={"q": "dental"}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert ("client", "Acme Dental") in kinds(answer.json()["hits"])
    assert http.get("/api/v1/search", params={"q": "dental"}).status_code == 401


def test_an_invoice_is_found_by_the_start_of_its_number(office):
    browser, db = office["browser"], office["db"]
    from sqlalchemy import select

    from tenure.billing.models import Invoice

    with db.reader() as s:
        number = s.scalar(select(Invoice.number).order_by(Invoice.id).limit(1))
    if number is None:
        pytest.skip("the demo has no invoice")
    hits = browser.get("/search", params={"q": number[:-1].lower()}, headers=JSON).json()["hits"]
    assert ("invoice", number) in kinds(hits)


def test_every_page_marks_where_you_are_has_a_skip_link_and_a_favicon(office):
    page = office["browser"].get("/triage")
    assert re.search(r'<a href="/triage" data-go="t" aria-current="page">Triage', page.text)
    assert page.text.count('aria-current="page"') == 1
    assert '<a class="skip" href="#main">' in page.text and '<main id="main"' in page.text
    assert 'rel="icon" href="/static/favicon.svg' in page.text
    icon = office["browser"].get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_the_navigation_counts_what_waits_in_the_triage_queue(office):
    from tenure.web.shell import attention

    counts = attention(office["db"])
    page = office["browser"].get("/").text
    if counts["triage"]:
        assert re.search(r'href="/triage"[^>]*>Triage <span class="count"[^>]*>.*?' + str(counts["triage"]), page)
    assert set(counts) == {"triage", "overdue", "waiting", "mail_failed"}


def test_an_error_page_keeps_the_navigation_and_says_what_to_do(office):
    missing = office["browser"].get("/clients/nobody-at-all")
    assert missing.status_code == 404
    assert 'aria-label="main"' in missing.text and 'action="/search"' in missing.text
    assert "Search for it with the box above" in missing.text
    refused = office["browser"].get("/reports/profitability")  # a read-only user may not
    assert refused.status_code == 403 and 'aria-label="main"' in refused.text
    assert "Ask the owner" in refused.text
    signed_out = TestClient(office["app"], base_url="http://testserver").get("/static/nothing.css")
    assert signed_out.status_code == 404 and 'aria-label="main"' not in signed_out.text


def test_codes_show_as_words_and_money_with_thousands_separators():
    assert words("call_before_service") == "Call before service"
    assert words("monitoring_block") == "Monitoring from the block"
    assert words("backup_monitoring") == "Backup monitoring"
    assert words("some_new_code") == "Some new code"  # a code added later still reads as words
    assert words(["remote_support", "onsite"]) == "Remote support, On site"
    assert words(None) == "–"
    assert money(Decimal("1234567.5")) == "1,234,567.50"
    assert money("980") == "980.00"
    assert money(None) == ""


def test_the_api_docs_are_served_by_the_server_itself(office):
    http = TestClient(office["app"], base_url="http://testserver")
    page = http.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        assert http.get(source).status_code == 200, source
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_the_ledger_names_each_entrys_cause_and_the_rounding_of_time_deducted(office):
    from tenure.web import queries

    entries = queries.ledger_page(office["db"], "willow", clock.today(), 50, 0).items
    assert entries and all(e["cause_label"] for e in entries), [e for e in entries if not e["cause_label"]]
    deductions = [e for e in entries if e.get("cause", "").startswith("time_entry:")]
    assert deductions and all(e["rounding"] and "min logged →" in e["rounding"] for e in deductions)
    assert all(e["cause_page"].startswith("/clients/willow?tab=time#time-") for e in deductions)
    page = office["browser"].get("/clients/willow", params={"tab": "ledger"}).text
    first = deductions[0]
    assert first["cause_label"].split(" (")[0] in page and first["rounding"] in page
    assert f'href="{first["cause_page"]}"' in page


def test_time_on_a_former_client_or_uncovered_says_so_before_it_is_saved(office):
    from sqlalchemy import func, select

    from tenure.agreements.models import TimeEntry

    opened = log_in(office["db"], "olive", PASSWORD, "127.0.0.1")
    owner = TestClient(office["app"], base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
    with office["db"].reader() as s:
        before = s.scalar(select(func.count()).select_from(TimeEntry))
    former = owner.get("/clients/spruce/time/preview", params={"minutes": 50, "work_type": "onsite"}).json()
    assert former["former_client"] and any("former client" in w for w in former["warnings"])
    assert any("would be billed" in w for w in former["warnings"])
    covered = owner.get("/clients/willow/time/preview", params={"minutes": 50, "work_type": "onsite"}).json()
    assert covered["warnings"] == [] and covered["rounded_minutes"] == 60 and "from block willow-b1" in covered["paid"]
    with office["db"].reader() as s:
        assert s.scalar(select(func.count()).select_from(TimeEntry)) == before  # nothing saved
    assert office["browser"].get("/clients/willow/time/preview").status_code == 403  # read-only may not log time
    assert 'data-preview="/clients/willow/time/preview"' in owner.get("/clients/willow?tab=time").text

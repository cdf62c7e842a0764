"""Signed links answered without an account: valid (GET asks, POST records), expired, tampered, reused; the
monthly notice's approve/defer links and the low-balance notice's request for a new block."""

from __future__ import annotations

import os
import re
import stat
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenure import clock
from tenure.book.service import import_book
from tenure.clients.models import Client
from tenure.maintenance import service as maintenance
from tenure.maintenance.models import MaintenanceDecision
from tenure.notices import links, outbox
from tenure.notices.models import Notice
from tenure.triage.models import Ticket
from tests.test_maintenance import world
from tests.test_outbox import Server, free_port

SECRET = "test-secret-key-for-signed-links-0123456789"


@pytest.fixture
def month(db, monkeypatch):
    """Cedar's December list, written."""
    monkeypatch.setenv("TENURE_SECRET_KEY", SECRET)
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, world())
    clock.set_now("2026-12-02T15:00:00Z")
    maintenance.run_due(db)
    with db.reader() as s:
        notice = s.scalars(select(Notice).where(Notice.kind == "monthly_maintenance")).one()
    return db, {i["task"]: i for i in notice.data["items"]}


def http(db) -> TestClient:
    from tenure.api.app import create_app

    return TestClient(create_app(db))


def path(url: str) -> str:
    return url.removeprefix(links.base_url())


def decision(db, decision_id: int) -> MaintenanceDecision:
    with db.reader() as s:
        return s.get(MaintenanceDecision, decision_id)


def test_a_valid_link_asks_first_and_records_once_on_post(month):
    db, items = month
    web = http(db)
    item = items["antivirus-review"]
    page = web.get(path(item["approve"]))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Approve: Monthly review of the antivirus console" in page.text and "$63.63" in page.text
    assert '<form method="post">' in page.text and "Example IT" in page.text
    assert "<link" not in page.text and "<script" not in page.text and "src=" not in page.text  # self-contained
    assert (
        page.headers["cache-control"] == "no-store" and "default-src 'none'" in page.headers["content-security-policy"]
    )
    assert decision(db, item["decision"]).answer is None  # a GET (a mail scanner, a preview) changes nothing

    answered = web.post(path(item["approve"]), data={"note": "Tuesday morning, please"})
    assert answered.status_code == 200 and "Thank you: approved" in answered.text
    recorded = decision(db, item["decision"])
    assert recorded.answer == "approved" and recorded.note == "Tuesday morning, please"
    assert recorded.answered_at == clock.now()
    with db.reader() as s:
        ticket = s.get(Ticket, recorded.ticket_id)
    assert ticket.kind == "maintenance" and ticket.billable and ticket.status == "new"
    assert f"ticket #{ticket.id}" in answered.text


def test_a_reused_link_is_refused_with_a_clear_page(month):
    db, items = month
    web = http(db)
    item = items["patches"]
    assert web.post(path(item["defer"])).status_code == 200
    assert decision(db, item["decision"]).answer == "deferred" and decision(db, item["decision"]).ticket_id is None
    for again in (web.post(path(item["defer"])), web.get(path(item["defer"])), web.post(path(item["approve"]))):
        assert again.status_code == 409
        assert "You already answered this" in again.text and "deferred to next month on 2 December 2026" in again.text
    assert decision(db, item["decision"]).answer == "deferred"  # the approve link did not overturn it
    with db.reader() as s:
        cedar = s.scalars(select(Client.id).where(Client.key == "cedar")).one()
        assert s.scalars(select(Ticket).where(Ticket.client_id == cedar, Ticket.billable)).all() == []


def test_an_expired_link_is_refused(month):
    db, items = month
    web = http(db)
    item = items["test-restore"]
    clock.set_now(clock.now() + timedelta(days=44))
    assert web.get(path(item["approve"])).status_code == 200  # still valid after 44 days
    clock.set_now(clock.now() + timedelta(days=2))
    for response in (web.get(path(item["approve"])), web.post(path(item["approve"]))):
        assert response.status_code == 410 and "This link has expired" in response.text
        assert "expired on 16 January 2027" in response.text and "Test restore" in response.text
    assert decision(db, item["decision"]).answer is None


def test_a_tampered_link_is_refused(month, monkeypatch):
    db, items = month
    web = http(db)
    token = path(items["malware-check"]["approve"]).removeprefix("/n/")
    payload, stamp, signature = token.split(".")
    other = path(items["patches"]["approve"]).removeprefix("/n/").split(".")[0]  # another item's payload
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for forged in (f"{other}.{stamp}.{signature}", f"{payload}.{stamp}.{flipped}", "garbage", f"{payload}.{stamp}"):
        for response in (web.get(f"/n/{forged}"), web.post(f"/n/{forged}")):
            assert response.status_code == 400 and "This link is not valid" in response.text
    monkeypatch.setenv("TENURE_SECRET_KEY", "another-installation-key-0123456789abcdef")
    assert web.get(f"/n/{token}").status_code == 400  # signed with another key
    monkeypatch.setenv("TENURE_SECRET_KEY", SECRET)
    assert web.get(f"/n/{token}").status_code == 200
    assert (
        decision(db, items["malware-check"]["decision"]).answer is None
        and decision(db, items["patches"]["decision"]).answer is None
    )
    calendar = links.calendar_token(client="cedar")
    assert web.get(f"/n/{calendar}").status_code == 400  # a calendar token is not a notice link


def test_a_superseded_link_points_to_the_newer_list(month):
    db, items = month
    clock.set_now("2027-01-04T15:00:00Z")
    maintenance.run_due(db)  # January's list takes the unanswered December items over
    response = http(db).get(path(items["network-security"]["approve"]))
    assert response.status_code == 409 and "This item is on a newer list" in response.text


def test_a_low_balance_notice_carries_a_link_to_ask_for_a_new_block(db, monkeypatch):
    monkeypatch.setenv("TENURE_SECRET_KEY", SECRET)
    monkeypatch.setenv("TENURE_MAIL_FROM", "it@example-it.example")
    monkeypatch.setenv("TENURE_STAFF_EMAIL", "desk@example-it.example")
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, world())
    clock.set_now("2026-12-02T15:00:00Z")
    with db.unit_of_work() as s:
        pine = s.scalars(select(Client).where(Client.key == "pine")).one()
        low = Notice(  # as agreements.service.record_balance_notices writes it
            client_id=pine.id,
            kind="low_balance",
            dedupe_key="balance:pine:low:1",
            to=["pat@pine.example"],
            cc=[],
            subject="Pine Bakery: prepaid hours are running low (2:00 left)",
            body_text="On 2026-12-01 the prepaid block balance of Pine Bakery fell to 2:00 hours.",
            body_html=None,
            data={
                "date": "2026-12-01",
                "balance_minutes": 120,
                "burn_minutes_per_day": "20",
                "run_out": "2026-12-07",
                "audience": ["staff", "client"],
            },
            state="waiting",
            attempts=0,
            created_at=clock.now(),
        )
        s.add(low)
        s.flush()
        low_id = low.id
    server = Server(free_port()).start()
    try:
        monkeypatch.setenv("TENURE_SMTP_URL", f"smtp://127.0.0.1:{server.port}")
        outbox.send_due(db)
        ((_, mail),) = server.inbox.received
        link = re.search(r"http://127\.0\.0\.1:8000/n/\S+", mail.get_body(("plain",)).get_content()).group(0)
        web = http(db)
        page = web.get(path(link))
        assert page.status_code == 200 and "Ask for a new block of prepaid hours" in page.text
        assert "20 hours (+2 free): $2,400.00" in page.text and 'value="block-20"' in page.text
        asked = web.post(path(link), data={"choice": "block-20", "note": "before Christmas"})
        assert asked.status_code == 200 and "request sent" in asked.text
        again = web.post(path(link), data={"choice": "block-20"})
        assert again.status_code == 409 and "You already asked" in again.text
        assert web.get(path(link)).status_code == 409
        with db.reader() as s:
            (request,) = s.scalars(select(Notice).where(Notice.kind == "block_request")).all()
        assert request.to == ["desk@example-it.example"] and request.client_id is not None
        assert request.data["from_notice"] == low_id and request.data["choice"] == "block-20"
        assert request.data["note"] == "before Christmas" and "Pine Bakery asks for 20 hours" in request.subject
        outbox.send_due(db)  # the request goes to staff
        assert [m["To"] for _, m in server.inbox.received][-1] == "desk@example-it.example"
    finally:
        server.stop()


def test_the_secret_key_file_is_made_once_with_mode_0600(tmp_path, monkeypatch):
    monkeypatch.delenv("TENURE_SECRET_KEY", raising=False)
    monkeypatch.setenv("TENURE_HOME", str(tmp_path / "home"))
    token = links.sign_link({"k": "m", "d": 1, "a": "approve"})
    key_file = tmp_path / "home" / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert links.read_link(token) == {"k": "m", "d": 1, "a": "approve"}
    assert key_file.read_text().strip() == links.secret_key()

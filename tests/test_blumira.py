"""Blumira's public API, read-only, against a fake Blumira (a real HTTP server): the client on its own, then
the exit check of an offboarding run reading the organisation back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from tenure.book.service import import_book
from tenure.clients.accounts import set_secret
from tenure.clients.models import VendorAccount
from tenure.connectors.base import CallLog, ConnectorError
from tenure.connectors.blumira import Blumira
from tenure.offboarding import service
from tests.fakes import blumira as fake_blumira
from tests.fakes.blumira import FakeBlumira
from tests.fakes.tacticalrmm import FakeTacticalRMM, acme_book, seed_acme
from tests.fakes.tacticalrmm import running as running_rmm
from tests.test_offboarding_runner import ANSWERS, T0, at, finish_by_hand, options, step


@pytest.fixture
def blumira() -> Iterator[FakeBlumira]:
    with fake_blumira.running() as server:
        yield server


@pytest.fixture
def rmm() -> Iterator[FakeTacticalRMM]:
    with running_rmm() as server:
        yield server


def reader(fake: FakeBlumira, credentials: str | None = None, calls: CallLog | None = None) -> Blumira:
    return Blumira(credentials or fake.credentials, base_url=fake.api_url, token_url=fake.token_url, calls=calls,
                   backoff=0.01)


def test_lists_every_page_with_one_token_and_keeps_the_incoming_administrator(blumira):
    for n in range(150):
        blumira.add_device(f"WS{n:03}")
    blumira.add_user("tech@msp.example")
    blumira.add_user("Ada@Incoming-MSP.example")
    calls = CallLog(step="p7.verify")
    client = reader(blumira, calls=calls)
    try:
        assert len(client.list_agent_devices()) == 150
        left = client.leftovers(["ada@incoming-msp.example"])
    finally:
        client.close()
    assert len(left.devices) == 150 and left.users == ["tech@msp.example"]
    assert left.kept == ["Ada@Incoming-MSP.example"] and not left.empty
    assert blumira.requests[("POST", "/oauth/token")] == 1  # minted once, reused
    assert blumira.requests[("GET", "/public-api/v1/org/agents/devices")] == 4  # two pages of 100, twice
    assert all("client-secret" not in str(c) for c in calls.calls)  # the secret is never logged
    assert calls.calls[1]["path"] == "/org/agents/devices?page=1&page_size=100"


def test_an_expired_token_is_renewed_once_and_errors_say_what_to_do(blumira):
    client = reader(blumira)
    try:
        assert client.leftovers().empty
        blumira.expire_tokens()
        blumira.fail_next(503)  # tried again
        assert client.list_users() == []
        assert blumira.requests[("POST", "/oauth/token")] == 2
    finally:
        client.close()
    wrong = reader(blumira, "client-id:wrong")
    with pytest.raises(ConnectorError, match="refused the client credentials") as refused:
        wrong.list_users()
    assert refused.value.retryable is False
    minted = reader(blumira, "eyJ.not-a-token-it-knows.sig")  # a JWT given as is: no token request
    with pytest.raises(ConnectorError, match=r"refused the credentials \(401\).*set-secret"):
        minted.list_agent_devices()


def test_the_exit_check_reads_blumira_and_keeps_the_run_open_until_it_is_empty(db, rmm, blumira):
    seed_acme(rmm)
    import_book(db, acme_book(rmm.url, features=("patching", "automated_tasks"), backup=False))
    with db.unit_of_work() as s:
        account = s.scalars(select(VendorAccount).where(VendorAccount.key == "acme-siem")).one()
        account.url = blumira.api_url
        account.details = {**account.details, "token_url": blumira.token_url}
    set_secret(db, "acme-siem", blumira.credentials)
    blumira.add_device("ACME-DC01")
    blumira.add_user("tech@msp.example")
    blumira.add_user("ada@incoming-msp.example")  # ANSWERS' incoming administrator: stays
    at(T0)
    opts = options(rmm)
    service.apply(db, "acme", ANSWERS, options=opts)
    service.answer(db, "approve", "acme", "p3.approval")
    service.apply(db, "acme", None, options=opts)
    at(T0 + timedelta(hours=3))
    status = finish_by_hand(db, service.apply(db, "acme", None, options=opts), opts, keep=("p7.lessons",))
    service.answer(db, "done", "acme", "p7.lessons", "price")
    status = service.apply(db, "acme", None, options=opts)
    verify = step(status, "p7.verify")
    assert verify["state"] == "waiting" and status["completed_at"] is None
    assert "Blumira (acme-siem) still lists 1 agent device(s): ACME-DC01; 1 user(s): tech@msp.example" in (
        verify["error"]
    )
    assert verify["result"]["conditions"]["vendor_accounts_emptied"]["ok"] is False

    with blumira.lock:
        blumira.devices.clear()
        blumira.users = [u for u in blumira.users if u["email"] != "tech@msp.example"]
    at(T0 + timedelta(hours=4))
    status = service.apply(db, "acme", None, options=opts)
    assert step(status, "p7.verify")["state"] == "done" and status["state"] == "done"


def test_without_credentials_the_manual_ticks_are_all_there_is(db, rmm, blumira):
    seed_acme(rmm)
    import_book(db, acme_book(rmm.url, features=("patching", "automated_tasks"), backup=False))
    blumira.add_device("ACME-DC01")  # nobody can see it: no credentials stored
    at(T0)
    opts = options(rmm)
    service.apply(db, "acme", ANSWERS, options=opts)
    service.answer(db, "approve", "acme", "p3.approval")
    service.apply(db, "acme", None, options=opts)
    at(T0 + timedelta(hours=3))
    status = finish_by_hand(db, service.apply(db, "acme", None, options=opts), opts)
    assert status["state"] == "done", [(s["key"], s["state"], s.get("error")) for s in status["steps"]
                                       if s["state"] != "done"]
    assert blumira.requests == {}

"""Calendar feeds: an address can be revoked (a new one replaces every earlier one), an empty calendar is still
a valid iCalendar object, and an address is handed out only for a client or a technician that exists."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from icalendar import Calendar

from tenure import clock
from tenure.accounts import users
from tenure.book.service import import_book
from tests.test_maintenance import world

KEY = "test-secret-key-for-signed-links-0123456789"
ENV = {"TENURE_SECRET_KEY": KEY}


@pytest.fixture
def loaded(db, monkeypatch):
    monkeypatch.setenv("TENURE_SECRET_KEY", KEY)
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, world())  # terry logged acme's time
    clock.set_now("2026-12-02T15:00:00Z")
    return db


@pytest.fixture
def http(loaded):
    from tenure.api.app import create_app

    with TestClient(create_app(loaded)) as client:
        yield client


def url(cli, *args: str) -> str:
    return cli("maintenance", "calendar-url", *args, env=ENV).stdout.strip()


def test_rotating_a_feed_revokes_every_earlier_address(loaded, cli, http):
    first = url(cli, "--client", "cedar")
    assert first == url(cli, "--client", "cedar")  # asked again, the same address
    terry = url(cli, "--technician", "terry")
    assert http.get(first).status_code == 200 and http.get(terry).status_code == 200

    rotated = json.loads(cli("maintenance", "calendar-url", "--client", "cedar", "--rotate", "--json", env=ENV).stdout)
    assert rotated["rotated"] is True and rotated["path"] != first
    assert http.get(first).status_code == 404  # the old address is gone
    assert Calendar.from_ical(http.get(rotated["path"]).content).walk("VEVENT")
    assert url(cli, "--client", "cedar") == rotated["path"]  # the new one is the one handed out from now on
    assert http.get(terry).status_code == 200  # other feeds are untouched

    again = url(cli, "--technician", "Terry", "--rotate")  # a technician's too, whatever the case
    assert http.get(terry).status_code == 404 and http.get(again).status_code == 200
    assert http.get(rotated["path"]).status_code == 200


def test_a_technician_with_nothing_planned_gets_a_valid_calendar(loaded, cli, http, monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    users.create_user(loaded, "sam", "a long enough password", "technician")
    answer = http.get(url(cli, "--technician", "sam"))
    assert answer.status_code == 200
    calendar = Calendar.from_ical(answer.content)
    assert list(calendar.walk("VEVENT")) == []
    # RFC 5545: a calendar holds at least one component; an empty feed holds the MSP's time zone
    assert [c.name for c in calendar.subcomponents] == ["VTIMEZONE"]
    assert str(calendar.subcomponents[0]["TZID"]) == "America/Chicago"
    assert b"BEGIN:VTIMEZONE" in answer.content


def test_an_address_is_only_for_a_client_or_technician_that_exists(loaded, cli):
    for args, message in (
        (("--technician", "nobody"), "error: no technician 'nobody'"),
        (("--client", "nope"), "error: no client 'nope'"),
        ((), "error: name either a client"),
    ):
        refused = cli("maintenance", "calendar-url", *args, check=False, env=ENV)
        assert refused.returncode == 1 and refused.stdout == "", args
        assert refused.stderr.startswith(message) and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert url(cli, "--technician", "TERRY").startswith("/calendar/")  # on time entries, in any case

"""A repeat goes on the open ticket of its fingerprint (DOMAIN.md): an alert still firing whose ticket a person
closed opens work again, on a new ticket the alert then points to, once; its later repeats count there."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tenure import clock
from tenure.book.demo import load_demo
from tenure.desk import service as desk
from tenure.intake import service as intake
from tenure.intake.models import Alert
from tenure.triage.models import Ticket


@pytest.fixture
def demo(db):
    clock.set_now("2026-12-05T12:00:00Z")
    load_demo(db)
    return db


def _event(status: str = "firing") -> bytes:
    return json.dumps(
        {"source": "nagios", "title": "Disk low on ACME-DC01", "status": status, "client": "acme", "fingerprint": "d1"}
    ).encode()


def _ticket(db, n: int) -> tuple[str, int]:
    with db.reader() as s:
        ticket = s.get(Ticket, n)
        return ticket.status, ticket.alert_count


def _alert(db, alert_id: int) -> tuple[int | None, int, str]:
    with db.reader() as s:
        alert = s.get(Alert, alert_id)
        return alert.ticket_id, alert.count, alert.status


def test_a_repeat_after_its_ticket_was_closed_opens_work_again_once(demo):
    (first,) = intake.ingest_many(demo, "event", [_event()])
    assert first.decision == "ticket"
    desk.close_ticket(demo, first.ticket, "fixed, we thought")
    (again,) = intake.ingest_many(demo, "event", [_event()])
    assert again.alert == first.alert and again.ticket not in (None, first.ticket)
    assert _ticket(demo, again.ticket) == ("new", 1)
    assert _ticket(demo, first.ticket) == ("closed", 1)  # the closed one is left as it was
    assert _alert(demo, first.alert) == (again.ticket, 2, "firing")
    (third,) = intake.ingest_many(demo, "event", [_event()])
    assert third.ticket == again.ticket and _ticket(demo, again.ticket) == ("new", 2)
    (resolved,) = intake.ingest_many(demo, "event", [_event("resolved")])
    assert resolved.ticket == again.ticket and _ticket(demo, again.ticket)[0] == "closed"


def test_a_repeat_and_its_resolve_in_one_batch_leave_no_ticket_open(demo):
    (first,) = intake.ingest_many(demo, "event", [_event()])
    desk.close_ticket(demo, first.ticket, "fixed, we thought")
    repeat, resolve = intake.ingest_many(demo, "event", [_event(), _event("resolved")])
    assert repeat.ticket == resolve.ticket != first.ticket
    assert _ticket(demo, repeat.ticket)[0] == "closed"
    assert _alert(demo, first.alert) == (repeat.ticket, 2, "resolved")
    with demo.reader() as s:
        titled = select(Ticket.status).where(Ticket.title == "Disk low on ACME-DC01")
        assert sorted(s.scalars(titled)) == ["closed", "closed"]  # the first, and the one the repeat opened

"""Lapsed or prospect: a client no other rule classifies is lapsed once it has any record (DOMAIN.md's client
classes), read from every kind of record; a voided time entry is no record of work."""

from __future__ import annotations

from sqlalchemy import select

from tenure import clock
from tenure.agreements.changes import void_time_entry
from tenure.agreements.models import TimeEntry
from tenure.book.service import import_book
from tenure.clients.service import list_clients
from tests.books import small


def _quiet_client(key: str, **records: list[dict]) -> dict:
    return {"key": key, "name": key.title(), **records}


def test_a_client_with_only_old_records_is_lapsed_and_one_with_a_voided_entry_alone_a_prospect(db):
    clock.set_now("2026-10-15T12:00:00Z")
    book = small()
    old_work = {"date": "2024-03-04", "minutes": 60, "work_type": "remote_support", "technician": "terry"}
    book["clients"] += [
        _quiet_client("fern", time_entries=[{"key": "fern-1", **old_work}]),
        _quiet_client("gale", time_entries=[{"key": "gale-1", **old_work}]),
        _quiet_client("hazel", invoices=[{"date": "2024-05-10", "total": "80.00", "recurring": False, "paid": True}]),
        _quiet_client("iris"),
    ]
    import_book(db, book)
    with db.reader() as s:
        voided = s.scalar(select(TimeEntry.id).where(TimeEntry.key == "gale-1"))
    void_time_entry(db, voided, "logged against the wrong client")

    classes = {view.key: view.klass for view in list_clients(db, clock.today())}
    assert classes["fern"] == "lapsed"  # work two years ago, nothing since
    assert classes["hazel"] == "lapsed"  # an invoice long out of the twelve-month window
    assert classes["gale"] == "prospect"  # its only entry was voided: no work was ever done
    assert classes["iris"] == "prospect"

"""The book: validated first, imported all or nothing, upserted by key, exported to the same data."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tenure.agreements.models import Agreement, Block, LedgerEntry
from tenure.book.schema import Book
from tenure.book.service import export_book, import_book
from tenure.db.base import Base
from tenure.db.changelog import ObjectChange
from tenure.errors import ValidationFailed
from tests.books import small


def counts(db) -> dict[str, int]:
    with db.reader() as s:
        return {
            t.name: s.execute(select(func.count()).select_from(t)).scalar_one() for t in Base.metadata.sorted_tables
        }


def test_import_then_export_gives_the_same_book(db):
    import_book(db, small())
    exported = export_book(db)
    acme = exported["clients"][0]
    assert acme["agreements"][0]["monthly_fee"] == "1200.00"
    assert acme["agreements"][0]["included_hours"] == 10
    assert acme["blocks"][0]["bonus_hours"] == 2  # from the MSP's table: 20 hours earn 2
    assert acme["retainer_deposits"][0]["amount"] == "1000.00"
    assert acme["devices"][0]["rmm"] == {"vendor": "tacticalrmm", "id": "agent-1"}
    assert acme["accounts"][1]["users"] == 4
    # the export imports back to the same data: nothing changes and it exports identically
    before = counts(db)
    summary = import_book(db, exported)
    assert not summary.created and not summary.updated
    assert counts(db) == before
    assert export_book(db) == exported
    assert Book.model_validate(exported)  # and it is a valid book


def test_export_imports_into_an_empty_database_identically(db):
    import_book(db, small())
    exported = json.loads(json.dumps(export_book(db)))
    with db.unit_of_work() as s:  # a new MSP: empty the business tables, keep the schema
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(table.delete())
    import_book(db, exported)
    assert export_book(db) == exported


def test_reimport_updates_only_what_changed_and_logs_it(db):
    import_book(db, small())
    book = small()
    book["clients"][0]["agreements"][0]["monthly_fee"] = "1300.00"
    summary = import_book(db, book)
    assert summary.updated == {"agreements": 1}
    assert not summary.created
    with db.reader() as s:
        change = s.scalars(
            select(ObjectChange).where(ObjectChange.object_type == "agreement", ObjectChange.action == "update")
        ).one()
        assert change.before["monthly_fee"] == "1200.00" and change.after["monthly_fee"] == "1300.00"
        assert change.object_label == "acme-managed"
        assert s.scalars(select(Agreement.monthly_fee).where(Agreement.key == "acme-managed")).one() == 1300


def test_block_hours_changed_by_a_later_book_is_an_adjustment_not_an_edit(db):
    import_book(db, small())
    book = small()
    book["clients"][0]["blocks"][0]["hours"] = 25  # now 25 hours: tier 20 still gives 2 bonus hours
    import_book(db, book)
    with db.reader() as s:
        entries = s.execute(
            select(LedgerEntry.kind, LedgerEntry.minutes)
            .where(LedgerEntry.cause_type == "block")
            .order_by(LedgerEntry.id)
        ).all()
        assert entries == [("purchase", 1200), ("bonus", 120), ("adjustment", 300)]
        assert s.scalars(select(Block.minutes)).one() == 1500


BAD = [
    (
        lambda b: b["clients"][0]["agreements"][0].update(kind="manged"),
        "clients[0].agreements[0].kind: 'manged' is not one of 'managed', 'monitoring', 'call_before_service', "
        "'retainer', 'adhoc'",
    ),
    (lambda b: b["clients"][0].update(colour="red"), "clients[0].colour: unknown field"),
    (lambda b: b["clients"][0]["time_entries"][0].update(minutes="ninety"), "clients[0].time_entries[0].minutes:"),
    (
        lambda b: b["clients"][0]["devices"][0].update(site="annex"),
        "clients[0].devices[0].site: no site 'annex' in this client",
    ),
    (
        lambda b: b["clients"][0]["backup_jobs"][0].update(device="nope"),
        "clients[0].backup_jobs[0].device: no device 'nope' in this client",
    ),
    (lambda b: b["clients"][1].update(key="acme"), "clients[1].key: duplicate key 'acme'"),
    (
        lambda b: b["clients"][1]["agreements"][0].update(key="acme-managed"),
        "clients[1].agreements[0].key: duplicate key 'acme-managed'",
    ),
    (
        lambda b: b["clients"][0]["blocks"][0].update(price="10.005"),
        "clients[0].blocks[0].price: '10.005' has fractions",
    ),
    (lambda b: b["msp"].update(timezone="Mars/Olympus"), "msp.timezone: 'Mars/Olympus' is not a time zone"),
    (
        lambda b: b["clients"][0]["agreements"][0].pop("monthly_fee"),
        "clients[0].agreements[0]: a managed agreement needs monthly_fee",
    ),
    (lambda b: b.pop("msp"), "msp: is required"),
]


@pytest.mark.parametrize(("spoil", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_a_bad_book_names_the_place_and_changes_nothing(db, spoil, message):
    import_book(db, small())
    before, exported = counts(db), export_book(db)
    book = small()
    book["clients"][0]["name"] = "Renamed, must not land"
    spoil(book)
    with pytest.raises(ValidationFailed) as caught:
        import_book(db, book)
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems
    assert counts(db) == before
    assert export_book(db) == exported


def test_a_key_that_belongs_to_another_client_is_refused(db):
    import_book(db, small())
    before = counts(db)
    book = small()
    book["clients"][1]["devices"] = [{"key": "acme-dc01", "hostname": "STOLEN"}]
    book["clients"][0]["devices"] = []  # acme's device stays in the database: the book need not repeat it
    with pytest.raises(
        ValidationFailed, match=r"clients\[1\]\.devices\[0\]\.key: 'acme-dc01' already belongs to client 'acme'"
    ):
        import_book(db, book)
    assert counts(db) == before


def test_every_problem_is_reported_not_just_the_first(db):
    book = small()
    book["clients"][0]["agreements"][0]["kind"] = "manged"
    book["clients"][1]["name"] = ""
    with pytest.raises(ValidationFailed) as caught:
        import_book(db, book)
    assert len(caught.value.problems) == 2
    assert counts(db)["client"] == 0


def test_a_later_book_may_refer_to_a_device_imported_before(db):
    import_book(db, small())
    book = small()
    book["clients"][0]["devices"] = []
    book["clients"][0]["time_entries"].append(
        {"key": "t2", "date": "2026-10-04", "minutes": 30, "work_type": "remote_support", "device": "acme-dc01"}
    )
    assert import_book(db, book).created == {"time_entries": 1}

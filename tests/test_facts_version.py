"""Intake keeps what it read of the clients between batches while the database's count of their changes
(`facts_version`, kept by the triggers of migration 0023) stays the same. A change made any way (a service,
the database's prompt) is seen by the very next batch; a database that does not count every change is read
afresh for every batch."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, text

from tenure import clock
from tenure.book.objects import create_item
from tenure.book.service import import_book
from tenure.db.engine import Database
from tenure.intake import service
from tenure.intake.matching import FACT_TABLES, facts_counted
from tests.books import SMALL
from tests.support import demo_on_file


def small(db: Database) -> None:
    """The small book, and a first batch (which makes the count's row again if a test before emptied it)."""
    clock.set_now("2026-11-24T15:00:00Z")
    import_book(db, copy.deepcopy(SMALL))
    service.ingest_many(db, "event", [event_about("acme", "Printer offline")])


def event_about(client: str, title: str, service_: str = "monitoring") -> bytes:
    body = {"source": "probe", "client": client, "title": title, "status": "firing", "service": service_}
    return json.dumps(body).encode()


@contextmanager
def client_list_reads(db: Database) -> Iterator[list[str]]:
    """The statements that read every client (what matching keeps between batches), sent meanwhile."""
    seen: list[str] = []

    def note(_conn, _cursor, statement, _params, _context, _many) -> None:
        if statement.lstrip().startswith("SELECT client.id, client.") and "FROM client" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def version(db: Database) -> int:
    with db.engine.connect() as connection:
        return connection.execute(text("SELECT version FROM facts_version")).scalar_one()


def test_a_batch_after_another_reads_no_client_again_and_decides_the_same(db):
    small(db)
    first = service.ingest_many(db, "event", [event_about("acme", "Disk low on SRV01")])
    with client_list_reads(db) as reads:
        second = service.ingest_many(db, "event", [event_about("acme", "Disk low on SRV02")])
    assert reads == []
    assert [(o.client, o.decision) for o in first] == [(o.client, o.decision) for o in second] == [("acme", "ticket")]


def test_an_agreement_added_through_the_product_decides_the_very_next_batch(db):
    small(db)
    before = service.ingest_many(db, "event", [event_about("acme", "Antivirus definitions out of date", "antivirus")])
    assert [o.decision for o in before] != ["ticket"]
    create_item(db, "acme", "agreements", {
        "key": "acme-mail", "kind": "monitoring", "start": "2026-11-01", "monthly_fee": "50.00",
        "hourly_rate": "120.00", "covers": ["antivirus"],
    })  # fmt: skip
    with client_list_reads(db) as reads:
        after = service.ingest_many(db, "event", [event_about("acme", "Antivirus out of date again", "antivirus")])
    assert len(reads) == 1  # read afresh once, not kept
    assert [(o.client, o.decision) for o in after] == [("acme", "ticket")]


def test_a_client_renamed_at_the_database_prompt_is_matched_by_its_new_name_next_batch(db):
    small(db)
    assert [o.decision for o in service.ingest_many(db, "event", [event_about("Fresh Smiles", "Disk low")])] == [
        "quarantine"
    ]
    with db.engine.begin() as connection:  # an operator's fix, past every service
        connection.execute(text("UPDATE client SET name = 'Fresh Smiles' WHERE key = 'acme'"))
    outcomes = service.ingest_many(db, "event", [event_about("Fresh Smiles", "Disk low")])
    assert [(o.client, o.decision) for o in outcomes] == [("acme", "ticket")]


def test_a_count_emptied_by_hand_is_made_again_and_kept_from_then_on(db):
    small(db)
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM facts_version"))
    with client_list_reads(db) as reads:
        service.ingest_many(db, "event", [event_about("acme", "Disk low on SRV01")])
        service.ingest_many(db, "event", [event_about("acme", "Disk low on SRV02")])
    assert len(reads) == 1  # read once with the count made again, then kept
    assert version(db) == 0


def test_every_write_to_the_facts_is_counted_and_a_transaction_once_on_postgresql(db):
    small(db)
    with db.reader() as s:
        assert facts_counted(s)  # every trigger in place at the newest revision
    statements = {
        "client": [
            "INSERT INTO client (key, name, domains, billable_alerts, forward_alerts) "
            "VALUES ('kite', 'Kite Co', '[]', false, false)",
            "UPDATE client SET notes = 'moved' WHERE key = 'kite'",
        ],
        "mapping_rule": [
            "INSERT INTO mapping_rule (client_id, field, pattern) SELECT id, 'subject', 'KITE' FROM client "
            "WHERE key = 'kite'",
            "UPDATE mapping_rule SET pattern = 'KITE-' WHERE pattern = 'KITE'",
            "DELETE FROM mapping_rule WHERE pattern = 'KITE-'",
        ],
        "contact": ["UPDATE contact SET name = 'Jo S.' WHERE email = 'jo@acmedental.example'"],
        "agreement": ["UPDATE agreement SET hourly_rate = 125 WHERE key = 'acme-managed'"],
        "offboarding_run": ["DELETE FROM offboarding_run WHERE 1 = 0"],  # a statement that deletes nothing
        "client again": ["DELETE FROM client WHERE key = 'kite'"],
    }
    assert set(FACT_TABLES) <= {name.split()[0] for name in statements}
    for table, sqls in statements.items():
        counted = version(db)
        with db.engine.begin() as connection:
            for sql in sqls:
                connection.execute(text(sql))
        if table == "offboarding_run":
            assert version(db) == counted, "a statement that changed no row is not a change"
        elif db.is_sqlite:
            assert version(db) >= counted + len(sqls), table
        else:
            assert version(db) == counted + 1, f"{table}: one transaction, counted once"
    if not db.is_sqlite:  # TRUNCATE fires no row trigger: it is counted by a trigger of its own
        counted = version(db)
        with db.engine.begin() as connection:
            connection.execute(text("TRUNCATE mapping_rule"))
        assert version(db) == counted + 1


def test_a_database_that_does_not_count_every_change_is_read_afresh_each_batch(tmp_path: Path):
    """As a later SQLite migration that rebuilds one of the five tables would leave it: a trigger gone."""
    with demo_on_file(tmp_path / "lost-trigger.db") as db:
        with db.engine.begin() as connection:
            connection.execute(text("DROP TRIGGER facts_changed_contact_update"))
        fresh = Database(db.url)  # a process started after the migration
        try:
            with fresh.reader() as s:
                assert not facts_counted(s)
            for title in ("Disk low on SRV01", "Disk low on SRV02"):
                with client_list_reads(fresh) as reads:
                    outcomes = service.ingest_many(fresh, "event", [event_about("acme", title)])
                assert len(reads) == 1
                assert [o.client for o in outcomes] == ["acme"]
        finally:
            fresh.engine.dispose()

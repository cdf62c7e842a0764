"""A mapping rule intake cannot read (a field no rule may have, written at the database's prompt: a book's rule
is checked) waits aside with its reason in the log; it does not stop intake, and the other rules still place."""

from __future__ import annotations

import copy
import json
import logging

from sqlalchemy import text

from tenure import clock
from tenure.book.service import import_book
from tenure.intake import service
from tests.books import SMALL


def test_a_rule_of_an_unknown_field_is_left_aside_and_intake_goes_on(db, caplog):
    clock.set_now("2026-11-24T15:00:00Z")
    import_book(db, copy.deepcopy(SMALL))
    with db.engine.begin() as connection:
        acme = connection.execute(text("SELECT id FROM client WHERE key = 'acme'")).scalar_one()
        connection.execute(
            text(
                "INSERT INTO mapping_rule (client_id, field, pattern) "
                "VALUES (:c, 'senderr', 'x'), (:c, 'hostname', 'acme-*')"
            ),
            {"c": acme},
        )
    alert = {"source": "probe", "status": "firing", "service": "monitoring"}
    named = alert | {"client": "acme", "title": "Printer offline"}
    by_host = alert | {"host": "ACME-FS01", "title": "Disk low"}  # placed by the readable rule
    with caplog.at_level(logging.WARNING, logger="tenure.intake.matching"):
        outcomes = service.ingest_many(db, "event", [json.dumps(named).encode(), json.dumps(by_host).encode()])
    assert [(o.client, o.decision) for o in outcomes] == [("acme", "ticket"), ("acme", "ticket")]
    assert "mapping rule of acme: field 'senderr'" in caplog.text

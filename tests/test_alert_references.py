"""Migration 0022: an alert's ticket and payload, and a history row's alert, are referenced without a foreign
key. On SQLite the migration rebuilds both tables, and a rebuild drops a table: every alert, ticket link and
history row must come through it, both ways, with the dedupe index still holding firing alerts only."""

from __future__ import annotations

import json

from sqlalchemy import inspect

from tenure.db.engine import Database
from tenure.intake import service as intake
from tests.support import demo_on_file, migrate


def _event(title: str, status: str) -> bytes:
    return json.dumps({"source": "nagios", "client": "acme", "title": title, "status": status}).encode()


def _rows(db: Database) -> tuple[list[tuple], list[tuple]]:
    with db.engine.connect() as connection:
        alerts = connection.exec_driver_sql(
            "SELECT id, ticket_id, raw_payload_id, status FROM alert ORDER BY id"
        ).all()
        history = connection.exec_driver_sql("SELECT alert_id, status FROM alert_history ORDER BY id").all()
    return [tuple(r) for r in alerts], [tuple(r) for r in history]


def _references(db: Database) -> dict[str, set[str]]:
    found = inspect(db.engine)
    return {t: {fk["referred_table"] for fk in found.get_foreign_keys(t)} for t in ("alert", "alert_history")}


def test_the_rebuild_keeps_every_alert_its_ticket_and_its_history_both_ways(tmp_path):
    with demo_on_file(tmp_path / "refs.db") as db:
        intake.ingest_many(db, "event", [_event("Disk low", "firing"), _event("CPU hot", "firing")])
        intake.ingest_many(db, "event", [_event("Disk low", "resolved")])
        alerts, history = _rows(db)
        disk, cpu = alerts[-2:]  # after the demo's own alerts
        assert disk[1] and cpu[1] and (disk[3], cpu[3]) == ("resolved", "firing")
        assert history[-1] == (disk[0], "resolved")
        assert _references(db) == {"alert": {"client", "device", "backup_job"}, "alert_history": set()}

        migrate(db, "0021")
        assert _rows(db) == (alerts, history)
        assert _references(db) == {
            "alert": {"client", "device", "backup_job", "ticket", "raw_payload"},
            "alert_history": {"alert"},
        }
        migrate(db, "head", "upgrade")
        assert _rows(db) == (alerts, history)
        assert _references(db)["alert_history"] == set()
        with db.engine.connect() as connection:
            (sql,) = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_alert_open'"
            ).one()
        assert "WHERE status = 'firing'" in sql  # still the open alerts only, not every alert ever seen
        # and intake still dedupes against it: a repeat of the open alert is counted, not opened again
        intake.ingest_many(db, "event", [_event("CPU hot", "firing")])
        assert len(_rows(db)[0]) == len(alerts)

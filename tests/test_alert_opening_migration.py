"""Migration 0019: an alert's opening is the alert row itself. Going back, each opening is a history row
again, and the history, read in id order, tells each alert's story in the order it happened."""

from __future__ import annotations

import json

from tenure.db.engine import Database
from tenure.intake import service as intake
from tests.support import demo_on_file, migrate


def _event(title: str, status: str) -> bytes:
    return json.dumps({"source": "nagios", "client": "acme", "title": title, "status": status}).encode()


def _history(db: Database, alert_ids: list[int]) -> dict[int, list[tuple[str, str | None]]]:
    """Each alert's history rows, (status, note), in id order (the order the code before 0019 read them in)."""
    found: dict[int, list[tuple[str, str | None]]] = {aid: [] for aid in alert_ids}
    with db.engine.connect() as connection:
        for alert_id, status, note in connection.exec_driver_sql(
            "SELECT alert_id, status, note FROM alert_history ORDER BY id"
        ):
            if alert_id in found:
                found[alert_id].append((status, note))
    return found


def test_going_back_puts_each_opening_before_what_followed_it_and_coming_back_removes_it(tmp_path):
    with demo_on_file(tmp_path / "opening.db") as db:
        first = intake.ingest_many(db, "event", [_event("Disk low", "firing"), _event("CPU hot", "firing")])
        intake.ingest_many(db, "event", [_event("Disk low", "resolved")])
        disk, cpu = (o.alert for o in first)
        decisions = {o.alert: o.decision for o in first}
        at_head = _history(db, [disk, cpu])
        assert at_head == {disk: [("resolved", "event")], cpu: []}

        migrate(db, "0018")
        back = _history(db, [disk, cpu])
        # the disk alert resolved before the downgrade ran: its opening still comes first
        assert back == {
            disk: [("firing", decisions[disk]), ("resolved", "event")],
            cpu: [("firing", decisions[cpu])],
        }

        migrate(db, "head", "upgrade")
        assert _history(db, [disk, cpu]) == at_head

"""One bad record never stops the records beside it: an Alertmanager group or a list of events with one
alert that cannot be read records the others at once, and the payload waits in quarantine for that one
alone, with its reason; a replay does not record the others twice."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tenure import clock
from tenure.book.demo import load_demo
from tenure.intake import service as intake
from tenure.intake.models import Alert, RawPayload


@pytest.fixture
def demo(db):
    clock.set_now("2026-12-05T12:00:00Z")
    load_demo(db)
    return db


def _group(*alerts: dict) -> bytes:
    return json.dumps({"version": "4", "groupKey": "g", "status": "firing", "receiver": "t", "alerts": alerts}).encode()


def _alert(host: str, status: str, fingerprint: str) -> dict:
    labels = {"alertname": "DiskSpaceLow", "hostname": host, "severity": "critical"}
    return {"status": status, "labels": labels, "startsAt": "2026-12-04T10:00:00Z", "fingerprint": fingerprint}


def _alerts(db) -> int:
    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(Alert))


def _waiting(db, payload: int) -> tuple[str, str | None]:
    with db.reader() as s:
        row = s.execute(select(RawPayload.state, RawPayload.error).where(RawPayload.id == payload)).one()
    return row.state, row.error


def test_an_unreadable_alert_of_a_group_waits_alone_and_the_others_are_recorded(demo):
    before = _alerts(demo)
    body = _group(
        _alert("ACME-SRV01", "firing", "aaa1"),
        _alert("ACME-SRV02", "pending", "bbb2"),
        _alert("HARBOR-SRV01", "firing", "ccc3"),
    )
    outcomes = intake.ingest_many(demo, "alertmanager", [body])
    assert [(o.client, o.decision) for o in outcomes] == [
        ("acme", "ticket"),
        ("harbor", "ticket"),
        (None, "quarantine"),
    ]
    reason = "alertmanager.alerts[1].status: 'pending' is not firing or resolved"
    assert outcomes[-1].reason == reason
    assert _alerts(demo) == before + 2
    payload = outcomes[0].payload
    assert _waiting(demo, payload) == ("quarantined", f"1 of its alerts: {reason}")
    # replayed (a parser fixed, say): the two recorded alerts are not recorded again, the bad one still waits
    again = intake.replay(demo, [payload])
    assert [(o.decision, o.reason) for o in again] == [("quarantine", reason)]
    assert _alerts(demo) == before + 2
    assert _waiting(demo, payload)[0] == "quarantined"


def test_an_unreadable_event_of_a_list_waits_alone(demo):
    good = {"source": "nagios", "title": "Web down", "status": "firing", "client": "acme"}
    bad = {"source": "nagios", "title": "Odd", "status": "exploded", "client": "acme"}
    outcomes = intake.ingest_many(demo, "event", [json.dumps([good, bad]).encode()])
    assert [o.decision for o in outcomes] == ["ticket", "quarantine"]
    assert outcomes[1].reason.startswith("event[1].status:")
    assert _waiting(demo, outcomes[0].payload)[1].startswith("1 of its alerts: event[1].status:")


def test_a_group_none_of_whose_alerts_can_be_read_waits_whole_with_the_first_reason(demo):
    body = _group(_alert("ACME-SRV01", "pending", "aaa1"), _alert("ACME-SRV02", "weird", "bbb2"))
    (outcome,) = intake.ingest_many(demo, "alertmanager", [body])
    assert outcome.decision == "quarantine"
    assert outcome.reason == "alertmanager.alerts[0].status: 'pending' is not firing or resolved (and 1 more)"

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


def test_a_replay_of_a_payload_that_does_not_wait_is_refused_naming_it_and_replays_nothing(demo):
    from tenure.errors import ValidationFailed

    body = _group(_alert("ACME-SRV01", "firing", "aaa1"), _alert("ACME-SRV02", "pending", "bbb2"))
    waiting = intake.ingest_many(demo, "alertmanager", [body])[0].payload
    event = {"source": "nagios", "title": "Web down", "status": "firing", "client": "acme"}
    recorded = intake.ingest_many(demo, "event", [json.dumps(event).encode()])[0].payload
    with pytest.raises(ValidationFailed) as refused:
        intake.replay(demo, [waiting, 424242, recorded])
    assert refused.value.problems == [
        "payload 424242: there is no such payload",
        f"payload {recorded}: no longer waits in quarantine (it is processed)",
    ]
    assert _waiting(demo, waiting)[0] == "quarantined"  # the good id of the three was not replayed either
    assert [o.decision for o in intake.replay(demo, [waiting])] == ["quarantine"]


def test_an_alert_filter_no_alert_can_match_is_refused(demo):
    from tenure.errors import ValidationFailed
    from tenure.triage.service import list_alerts

    with pytest.raises(ValidationFailed, match=r"^decision: 'tikcet' is not one of ticket, quote"):
        list_alerts(demo, decision="tikcet")
    with pytest.raises(ValidationFailed, match=r"^status: 'open' is not one of firing, resolved"):
        list_alerts(demo, status="open")

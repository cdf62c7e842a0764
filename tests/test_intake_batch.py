"""The batch path of intake: stored and processed in one transaction, matched by index, written in bulk."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tenure import clock
from tenure.book.demo import load_demo
from tenure.book.service import export_book, import_book
from tenure.clients.models import Device
from tenure.intake import recording, service
from tenure.intake.models import Alert, AlertHistory, RawPayload
from tenure.notices.models import Notice
from tenure.triage.models import Ticket


def demo(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)


def event(client: str, title: str, status: str = "firing", **extra) -> bytes:
    body = {"source": "probe", "client": client, "title": title, "status": status, "service": "monitoring"}
    return json.dumps(body | extra).encode()


def test_a_batch_is_stored_and_decided_in_one_go(db, monkeypatch):
    demo(db)
    # in one transaction: not stored, failed, and processed again payload by payload (the fallback hides a
    # failure of the batch's own path from every other assertion here)
    monkeypatch.setattr(service, "process", lambda *_, **__: pytest.fail("the batch fell back to process()"))
    outcomes = service.ingest_many(db, "event", [event("acme", "CPU high"), event("maple", "Disk low"), b"{oops"])
    assert [(o.client, o.decision) for o in outcomes] == [
        ("acme", "ticket"),
        ("maple", "suppress"),
        (None, "quarantine"),
    ]
    with db.reader() as s:
        states = dict(s.execute(select(RawPayload.id, RawPayload.state)).all())
        assert [states[o.payload] for o in outcomes] == ["processed", "processed", "quarantined"]
        ticket = s.get(Ticket, outcomes[0].ticket)
        assert ticket.status == "new" and ticket.fingerprint == outcomes[0].fingerprint
        assert s.get(Alert, outcomes[0].alert).raw_payload_id == outcomes[0].payload


def test_a_batch_that_cannot_be_recorded_is_kept_for_the_worker(db, monkeypatch):
    demo(db)

    def broken(self):  # the database's own failure, no payload's fault
        raise OperationalError("INSERT …", {}, Exception("database or disk is full"))

    monkeypatch.setattr(recording.Recorder, "finish", broken)
    with pytest.raises(OperationalError, match="disk is full"):
        service.ingest_many(db, "event", [event("acme", "CPU high"), event("acme", "RAM high")])
    with db.reader() as s:
        waiting = s.scalars(select(RawPayload.body).where(RawPayload.state == "stored")).all()
        assert [json.loads(body)["title"] for body in waiting] == ["CPU high", "RAM high"]
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.title.in_(["CPU high", "RAM high"]))) == 0
    monkeypatch.undo()
    # the worker takes them up later, once
    assert [o.decision for o in service.process(db)] == ["ticket", "ticket"]
    assert service.process(db) == []


def test_payloads_already_processed_are_not_processed_again(db):
    demo(db)
    ids = service.receive_many(db, "event", [event("acme", "CPU high")])
    (first,) = service.process(db, ids)
    assert service.process(db, ids) == []  # a second worker, or a retry, finds them taken
    with db.reader() as s:
        assert s.get(Alert, first.alert).count == 1
        assert s.get(Ticket, first.ticket).alert_count == 1


def test_former_is_judged_on_the_alerts_date(db):
    demo(db)  # spruce was offboarded two months before the demo's month
    before, after = service.ingest_many(
        db,
        "event",
        [
            event("spruce", "CPU high, before it left", time="2026-06-01T10:00:00Z"),
            event("spruce", "CPU high, after it left", time="2026-11-20T10:00:00Z"),
        ],
    )
    assert before.decision != "orphaned" and "former" not in before.reason
    assert after.decision == "orphaned"


def test_hostnames_match_in_any_case_with_or_without_their_domain(db):
    demo(db)
    whole, short, other = service.ingest_many(
        db,
        "event",
        [
            event("", "Disk low", host="acme-srv01.acmedental.local", fingerprint="a"),
            event("", "Disk low", host="Acme-Srv01", fingerprint="b"),
            event("", "Disk low", host="nobody-knows-me", fingerprint="c"),
        ],
    )
    assert (whole.client, whole.device) == ("acme", "ACME-SRV01")
    assert (short.client, short.device) == ("acme", "ACME-SRV01")
    assert other.decision == "quarantine"


def test_a_renamed_device_is_found_by_its_new_name(db):
    demo(db)
    book = export_book(db)
    acme = next(c for c in book["clients"] if c["key"] == "acme")
    acme["devices"][0]["hostname"] = "ACME-FILES.acmedental.local"
    renamed = acme["devices"][0]["key"]
    import_book(db, book)
    with db.reader() as s:
        assert s.scalars(select(Device.host_key).where(Device.key == renamed)).one() == "acme-files"
    (found,) = service.ingest_many(db, "event", [event("", "Disk low", host="ACME-FILES")])
    assert (found.client, found.device) == ("acme", "ACME-FILES.acmedental.local")


def test_fire_resolve_fire_in_one_batch_makes_two_alerts_and_two_forwards(db):
    demo(db)
    book = export_book(db)
    next(c for c in book["clients"] if c["key"] == "birch")["forward_alerts"] = True
    import_book(db, book)
    fired, resolved, again = service.ingest_many(
        db,
        "event",
        [
            event("birch", "Router offline", fingerprint="r1"),
            event("birch", "Router offline", status="resolved", fingerprint="r1"),
            event("birch", "Router offline", fingerprint="r1"),
        ],
    )
    assert fired.decision == again.decision == "forward"
    assert resolved.alert == fired.alert and again.alert != fired.alert
    with db.reader() as s:
        assert s.get(Alert, fired.alert).status == "resolved"
        assert s.get(Alert, again.alert).status == "firing"
        notes = s.scalars(select(AlertHistory.status).where(AlertHistory.alert_id == fired.alert)).all()
        assert notes == ["resolved"]  # what changed after it opened: the opening is the alert row itself
        timeline = s.get(Alert, fired.alert).timeline
        assert [(status, note) for _, status, note in timeline] == [("firing", "forward"), ("resolved", "event")]
        assert [when for when, _, _ in timeline] == sorted(when for when, _, _ in timeline)
        assert s.scalar(select(func.count()).select_from(Notice).where(Notice.kind == "alert_forward")) == 2


def test_repeats_in_later_batches_count_on_the_open_alert_and_its_ticket(db):
    demo(db)
    (first,) = service.ingest_many(db, "event", [event("acme", "CPU high", fingerprint="cpu")])
    repeats = service.ingest_many(db, "event", [event("acme", "CPU high", fingerprint="cpu")] * 3)
    assert {(o.alert, o.ticket) for o in repeats} == {(first.alert, first.ticket)}
    service.ingest_many(db, "event", [event("acme", "CPU high", status="resolved", fingerprint="cpu")])
    with db.reader() as s:
        alert = s.get(Alert, first.alert)
        assert (alert.count, alert.status, alert.resolved_at is not None) == (4, "resolved", True)
        ticket = s.get(Ticket, first.ticket)
        assert (ticket.alert_count, ticket.status) == (4, "closed")


def test_repeats_are_counted_on_the_ticket_and_only_its_close_is_logged(db):
    """Alertmanager sends a firing alert again every few minutes: each repeat counts on the alert and its
    ticket, in bulk, without a change-log row per repeat; the resolve that closes the ticket is logged, with
    every repeat counted, including one that came in the same batch as the resolve."""
    from tenure.book.history import history

    demo(db)
    (first,) = service.ingest_many(db, "event", [event("acme", "CPU high", fingerprint="cpu")])
    (other,) = service.ingest_many(db, "event", [event("acme", "RAM high", fingerprint="ram")])
    service.ingest_many(db, "event", [event("acme", "CPU high", fingerprint="cpu")] * 3)
    both = [event("acme", "RAM high", fingerprint="ram"), event("acme", "CPU high", fingerprint="cpu")]
    service.ingest_many(db, "event", both)
    with db.reader() as s:
        assert s.get(Ticket, first.ticket).alert_count == 5
        assert s.get(Ticket, other.ticket).alert_count == 2
    assert [c["action"] for c in history(db, "ticket", str(first.ticket))["changes"]] == ["create"]
    service.ingest_many(
        db,
        "event",
        [
            event("acme", "CPU high", fingerprint="cpu", time="2026-11-24T15:20:00+01:00"),
            event("acme", "CPU high", status="resolved", fingerprint="cpu", time="2026-11-24T15:30:00+01:00"),
            event("acme", "RAM high", fingerprint="ram", time="2026-11-24T14:40:00Z"),
        ],
    )
    with db.reader() as s:
        cpu, ram = s.get(Ticket, first.ticket), s.get(Ticket, other.ticket)
        assert (cpu.alert_count, cpu.status) == (6, "closed")
        assert (ram.alert_count, ram.status) == (3, "new")
        cpu_alert, ram_alert = s.get(Alert, first.alert), s.get(Alert, other.alert)
        resolved_at = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)  # told in UTC+1, stored in UTC
        assert (cpu_alert.count, cpu_alert.status, cpu_alert.resolved_at) == (6, "resolved", resolved_at)
        assert (ram_alert.count, ram_alert.status, ram_alert.resolved_at) == (3, "firing", None)
        assert ram_alert.last_seen == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # the later of it and the batch
    closed, created = history(db, "ticket", str(first.ticket))["changes"]
    assert (closed["action"], created["action"]) == ("update", "create")
    assert closed["changed"]["status"] == ["new", "closed"]
    assert closed["changed"]["alert_count"] == [5, 6]
    assert set(closed["changed"]) == {"status", "closed_at", "alert_count"}
    with db.reader() as s:  # the whole state, as a person's change of the ticket logs it
        assert closed["after"] == s.get(Ticket, first.ticket).changelog_state()
    assert closed["label"] == f"#{first.ticket} CPU high"
    assert [c["action"] for c in history(db, "ticket", str(other.ticket))["changes"]] == ["create"]


def test_tickets_of_one_batch_are_due_by_each_clients_own_agreement(db):
    """A batch works each kind of client's targets out once (issue 21): a managed, a monitoring and a
    call-before-service client alerted together each get their own kind's due times, not the first's."""
    from tenure.desk import rules as desk
    from tenure.msp.models import MspSettings

    demo(db)
    with db.unit_of_work() as s:  # targets that differ by kind, so a mix-up shows
        s.scalars(select(MspSettings)).one().ticket_targets = {
            "managed": {"P1": {"response": 15, "resolution": 240}},
            "monitoring": {"P1": {"response": 45, "resolution": 480}},
            "call_before_service": {"P1": {"response": 90, "resolution": 1440}},
        }
    kinds = {"acme": "managed", "harbor": "monitoring", "pine": "call_before_service"}
    bodies = [event(client, "CPU high", severity="critical") for client in kinds]
    outcomes = service.ingest_many(db, "event", [*bodies, event("acme", "Disk full", severity="critical")])
    with db.reader() as s:
        targets = s.scalars(select(MspSettings.ticket_targets)).one()
        for outcome in outcomes:
            ticket = s.get(Ticket, outcome.ticket)
            expected = desk.due_times(targets, kinds[outcome.client], ticket.priority, ticket.opened_at)
            assert (ticket.priority, ticket.respond_by, ticket.due_at) == ("P1", expected.respond_by, expected.due_at)
        assert len({s.get(Ticket, o.ticket).due_at for o in outcomes}) == 3

"""Intake end to end through the service: stored, parsed, matched, deduplicated, decided, recorded."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tenure import clock
from tenure.book.demo import load_demo
from tenure.book.service import export_book, import_book
from tenure.clients.models import BackupJob
from tenure.intake import service
from tenure.intake.models import Alert, RawPayload
from tenure.notices.models import Notice
from tenure.triage.models import Ticket
from tests.support import empty

DATA = Path(__file__).parent / "data"


def demo(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)


def event(client: str, title: str, status: str = "firing", service_: str = "monitoring", **extra) -> bytes:
    return json.dumps(
        {
            "source": "probe",
            "client": client,
            "title": title,
            "status": status,
            "service": service_,
            "severity": "warning",
            **extra,
        }
    ).encode()


def decisions(outcomes):
    return [(o.client, o.decision) for o in outcomes]


def test_alertmanager_payload_is_stored_matched_and_ticketed(db):
    demo(db)
    outcomes = service.ingest(db, "alertmanager", (DATA / "intake/alertmanager_v4.json").read_bytes())
    assert {o.client for o in outcomes} == {"acme"}
    firing = [o for o in outcomes if o.status == "firing"]
    assert firing and all(o.decision == "ticket" and o.ticket for o in firing)
    assert "acme-managed covers" in firing[0].reason
    with db.reader() as s:
        assert s.scalars(select(RawPayload.state).where(RawPayload.source == "alertmanager")).all() == ["processed"]


def test_decisions_follow_each_clients_agreement(db):
    demo(db)
    cases = {
        "acme": "ticket",  # managed, covers monitoring
        "maple": "suppress",  # ad hoc: not covered, no opt-in
        "spruce": "orphaned",  # former client: a forgotten agent still reporting
        "pine": "ticket",  # call-before-service covers monitoring
    }
    for client, expected in cases.items():
        (outcome,) = service.ingest(db, "event", event(client, f"CPU high on {client}"))
        assert outcome.decision == expected, (client, outcome.reason)
    # the same client, opted in to billable alerts: a quote; asked for its own alerts: forwarded
    book = export_book(db)
    for client in book["clients"]:
        if client["key"] == "maple":
            client["billable_alerts"] = True
        if client["key"] == "birch":
            client["forward_alerts"] = True
    import_book(db, book)
    (quote,) = service.ingest(db, "event", event("maple", "Printer offline"))
    (forward,) = service.ingest(db, "event", event("birch", "Router offline"))
    assert (quote.decision, forward.decision) == ("quote", "forward")
    with db.reader() as s:
        ticket = s.get(Ticket, quote.ticket)
        assert ticket.status == "awaiting_approval" and ticket.billable
        notice = s.scalars(select(Notice).where(Notice.kind == "alert_forward")).one()
        assert notice.to == ["pat@birchfamily.example"]


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.integers(1, 12))
def test_repeats_count_on_one_ticket_and_a_resolve_closes_it(db, repeats):
    empty(db)
    demo(db)
    outcomes = [
        service.ingest(db, "event", event("acme", "Disk C: low", fingerprint="disk-c"))[0] for _ in range(repeats)
    ]
    assert len({o.ticket for o in outcomes}) == 1 and len({o.alert for o in outcomes}) == 1
    with db.reader() as s:
        alert = s.get(Alert, outcomes[0].alert)
        assert alert.count == repeats
        assert s.get(Ticket, outcomes[0].ticket).alert_count == repeats
    (resolved,) = service.ingest(db, "event", event("acme", "Disk C: low", status="resolved", fingerprint="disk-c"))
    assert resolved.alert == outcomes[0].alert
    with db.reader() as s:
        assert s.get(Alert, resolved.alert).status == "resolved"
        assert s.get(Ticket, outcomes[0].ticket).status == "closed"
    (again,) = service.ingest(db, "event", event("acme", "Disk C: low", fingerprint="disk-c"))
    assert again.alert != outcomes[0].alert and again.ticket != outcomes[0].ticket  # a new episode


def test_backup_mail_new_job_activates_for_a_covered_client_and_success_closes_it(db):
    demo(db)
    # the sample mail is from January 2025: coverage is judged on the alert's date, so Acme signs earlier here
    book = export_book(db)
    next(c for c in book["clients"] if c["key"] == "acme")["agreements"][0]["start"] = "2024-01-01"
    import_book(db, book)
    mail = (DATA / "backup_emails/veeam_success.eml").read_bytes()
    failure = mail.replace(b"[Success]", b"[Failed]").replace(b"Success", b"Failed")
    (failed,) = service.ingest(db, "email", failure)
    assert (failed.client, failed.decision) == ("acme", "ticket")
    assert "activates itself" in failed.reason
    (succeeded,) = service.ingest(db, "email", mail)
    assert succeeded.alert == failed.alert
    with db.reader() as s:
        job = s.scalars(select(BackupJob).where(BackupJob.name == "Daily VMs")).one()
        assert (job.status, job.last_status) == ("active", "success")
        assert s.get(Ticket, failed.ticket).status == "closed"


def test_a_new_job_of_a_client_without_backup_monitoring_is_pending(db):
    demo(db)
    mail = (DATA / "backup_emails/veeam_success.eml").read_bytes().replace(b"alerts+acme@", b"alerts+harbor@")
    mail = mail.replace(b"veeam@acmedental.example", b"veeam@harborlaw.example").replace(b"[Success]", b"[Failed]")
    (outcome,) = service.ingest(db, "email", mail)
    assert (outcome.client, outcome.decision) == ("harbor", "pending")
    with db.reader() as s:
        assert s.scalars(select(BackupJob.status).where(BackupJob.name == "Daily VMs")).one() == "pending"


def test_unmatched_mail_is_quarantined_then_replayed_after_a_mapping_rule(db):
    demo(db)
    newsletter = (DATA / "backup_emails/unknown_newsletter.eml").read_bytes()
    (outcome,) = service.ingest(db, "email", newsletter)
    assert outcome.decision == "quarantine"
    assert [q["payload"] for q in service.quarantine_page(db)[0]] == [outcome.payload]
    book = export_book(db)
    next(c for c in book["clients"] if c["key"] == "willow")["mapping_rules"] = [
        {"field": "sender_domain", "pattern": "storage-vendor.example"}
    ]
    import_book(db, book)
    (replayed,) = service.replay(db)
    assert replayed.client == "willow" and replayed.payload == outcome.payload
    assert service.quarantine_page(db)[0] == []


def test_garbage_is_quarantined_never_dropped(db):
    demo(db)
    (outcome,) = service.ingest(db, "alertmanager", b"{not json")
    assert outcome.decision == "quarantine"
    with db.reader() as s:
        row = s.scalars(select(RawPayload).where(RawPayload.source == "alertmanager")).one()
        assert row.state == "quarantined" and row.body == b"{not json" and row.error


def test_ping_checkins_fail_and_recover(db):
    demo(db)
    uuid = "5f2b7c1e-8d4a-4e43-9b8e-2f1c0a9d7e61"  # acme-srv02-restic in the demo
    (failed,) = service.ingest(db, "ping", b"", meta={"path": f"/ping/{uuid}/fail"})
    assert (failed.client, failed.decision) == ("acme", "ticket")
    service.ingest(db, "ping", b"", meta={"path": f"/ping/{uuid}/start"})
    (ok,) = service.ingest(db, "ping", b"", meta={"path": f"/ping/{uuid}/0"})
    assert ok.alert == failed.alert
    with db.reader() as s:
        assert s.get(Alert, failed.alert).status == "resolved"

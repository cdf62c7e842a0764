"""Offboarding reports: the final IT asset and system health reports (HTML and PDF from one template each),
lessons learned with reason codes, and `tenure report offboarding` (deactivation issues, return rate)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from tenure import clock
from tenure.agreements.models import Agreement
from tenure.billing.models import Invoice, InvoiceLine
from tenure.book.service import import_book
from tenure.clients.models import Client, Device
from tenure.connectors.registry import ConnectorSettings
from tenure.errors import ValidationFailed
from tenure.intake.models import Alert
from tenure.offboarding import reports, service
from tenure.offboarding.models import OffboardingRun
from tenure.runner import RetryPolicy
from tenure.triage.models import Ticket
from tests.books import small
from tests.fakes.tacticalrmm import FakeTacticalRMM, acme_book, running, seed_acme

T0 = datetime(2026, 12, 15, 15, 0, tzinfo=UTC)
ANSWERS = {
    "end_of_service": "2026-12-15",
    "reason": "client_cancelled",
    "access": "full",
    "agent_deployment": "manual",
    "moving_to": "other_msp",
    "new_contact": {"name": "Ada Stone", "email": "ada@incoming-msp.example"},
    "closeout": {"date": "2026-12-01", "attended": ["Ada Stone", "Jo Smith"], "notes": "handover agreed"},
}


@pytest.fixture
def fake() -> Iterator[FakeTacticalRMM]:
    with running() as server:
        yield server


def _started(db: Any, fake: FakeTacticalRMM) -> None:
    """acme with two Tactical agents, its run started (the snapshot taken), an alert and an open ticket."""
    seed_acme(fake, 2)
    import_book(db, acme_book(fake.url, 2))
    with db.unit_of_work() as s:
        acme = s.scalars(select(Client.id).where(Client.key == "acme")).one()
        dc01 = s.scalars(select(Device.id).where(Device.key == "acme-dc01")).one()
        s.add(Ticket(client_id=acme, kind="alert", status="new", title="Disk nearly full", opened_at=T0))
        for status in ("firing", "resolved"):
            s.add(
                Alert(
                    client_id=acme, device_id=dc01, source="tacticalrmm", fingerprint=f"disk-{status}",
                    service="monitoring", title=f"Disk space low ({status})", status=status, decision="ticket",
                    reason="covered", first_seen=T0, last_seen=T0,
                )
            )  # fmt: skip
    clock.set_now(T0)
    opts = service.Options(
        connectors=ConnectorSettings(api_keys={"tacticalrmm": fake.api_key}, backoff=0.01),
        policy=RetryPolicy(),
        worker="test-worker",
    )
    service.apply(db, "acme", ANSWERS, options=opts)


def test_the_asset_report_comes_from_the_snapshot_as_html_and_pdf(db, fake, tmp_path):
    _started(db, fake)
    made = reports.asset_report(db, "acme")
    assert made["source"] == "snapshot" and made["totals"]["devices"] == 2
    rmm = next(a for a in made["accounts"] if a["key"] == "acme-rmm")
    assert rmm["counts"]["devices"] == 2 and rmm["counts"]["agents_listed"] == 2
    siem = next(a for a in made["accounts"] if a["key"] == "acme-siem")
    assert siem["counts"] == {"sensors": 1, "users": 2}
    html = reports.render_html("asset", made)
    assert "Final IT asset report: Acme Dental" in html
    assert "ACME-DC01" in html and "ACME-WS01" in html and "Windows Server 2019" in html
    assert reports.render_pdf("asset", made).startswith(b"%PDF")


def test_the_health_report_counts_alerts_per_device_and_lists_jobs_and_tickets(db, fake):
    _started(db, fake)
    made = reports.health_report(db, "acme", as_of=T0)
    dc01 = next(d for d in made["devices"] if d["key"] == "acme-dc01")
    ws01 = next(d for d in made["devices"] if d["key"] == "acme-ws01")
    assert (dc01["open_alerts"], dc01["resolved_alerts"]) == (1, 1)
    assert (ws01["open_alerts"], ws01["resolved_alerts"]) == (0, 0)
    assert [t["title"] for t in made["open_tickets"]] == ["Disk nearly full"]
    assert made["backup_jobs"]
    html = reports.render_html("health", made)
    assert "ACME-DC01" in html and "ACME-WS01" in html and "Disk nearly full" in html
    assert reports.render_pdf("health", made).startswith(b"%PDF")


def test_offboard_report_writes_html_and_pdf(db, fake, cli, tmp_path):
    _started(db, fake)
    html, pdf = tmp_path / "assets.html", tmp_path / "assets.pdf"
    cli("offboard", "report", "acme", "--asset", "--html", str(html), "--pdf", str(pdf))
    assert "ACME-DC01" in html.read_text() and pdf.read_bytes().startswith(b"%PDF")
    cli("offboard", "report", "acme", "--health", "--html", str(html))
    assert "Final system health report" in html.read_text()
    refused = cli("offboard", "report", "acme", "--asset", "--health", check=False)
    assert refused.returncode != 0 and "exactly one" in refused.stderr


# ------------------------------------------------------------------------------------ the measures


END = date(2026, 6, 30)


def _former(db: Any, *, returned: bool) -> None:
    """acme offboarded on END (a done run), with issues after closeout, and maybe a new agreement."""
    import_book(db, small())
    at = datetime(2026, 7, 5, 9, 0, tzinfo=UTC)
    with db.unit_of_work() as s:
        acme = s.scalars(select(Client.id).where(Client.key == "acme")).one()
        s.add(
            OffboardingRun(
                client_id=acme, state="done", answers=ANSWERS | {"end_of_service": END.isoformat()},
                end_of_service=END, reason="client_cancelled", created_at=datetime(2026, 6, 1, tzinfo=UTC),
                completed_at=datetime(2026, 6, 30, 18, 0, tzinfo=UTC), lessons={},
            )
        )  # fmt: skip
        for fingerprint, decision, seen in (
            ("late", "orphaned", at),
            ("before", "ticket", datetime(2026, 6, 10, tzinfo=UTC)),  # before the end: not an issue
        ):
            s.add(
                Alert(
                    client_id=acme, source="tacticalrmm", fingerprint=fingerprint, service="monitoring",
                    title=f"Agent {fingerprint}", status="firing", decision=decision, reason="former client",
                    first_seen=seen, last_seen=seen,
                )
            )  # fmt: skip
        monthly = Invoice(
            number="INV-JULY", client_id=acme, kind="monthly", period="2026-07", date=date(2026, 7, 1),
            due_date=date(2026, 7, 11), status="issued", total=Decimal("1200.00"),
        )  # fmt: skip
        monthly.lines.append(
            InvoiceLine(
                position=1, kind="fee", description="Managed services, July", quantity=Decimal("1"),
                unit_price=Decimal("1200.00"), amount=Decimal("1200.00"),
                service_from=date(2026, 7, 1), service_to=date(2026, 7, 31),
            )
        )  # fmt: skip
        final = Invoice(
            number="INV-FINAL", client_id=acme, kind="final", date=END, due_date=date(2026, 7, 10),
            status="issued", total=Decimal("-100.00"),
        )  # fmt: skip
        final.lines.append(
            InvoiceLine(
                position=1, kind="credit", description="Fee billed past the end", quantity=Decimal("1"),
                unit_price=Decimal("-100.00"), amount=Decimal("-100.00"),
                service_from=date(2026, 7, 1), service_to=date(2026, 7, 31),
            )
        )  # fmt: skip
        voided = Invoice(
            number="INV-VOID", client_id=acme, kind="monthly", period="2026-08", date=date(2026, 8, 1),
            due_date=date(2026, 8, 11), status="void", total=Decimal("1200.00"),
        )  # fmt: skip
        voided.lines.append(
            InvoiceLine(
                position=1, kind="fee", description="Managed services, August", quantity=Decimal("1"),
                unit_price=Decimal("1200.00"), amount=Decimal("1200.00"),
                service_from=date(2026, 8, 1), service_to=date(2026, 8, 31),
            )
        )  # fmt: skip
        s.add_all([monthly, final, voided])
        s.add(Ticket(client_id=acme, kind="maintenance", status="new", title="Monthly patches", opened_at=at))
        if returned:
            s.add(
                Agreement(
                    client_id=acme, key="acme-back", kind="managed", start=date(2027, 2, 1),
                    monthly_fee=Decimal("900.00"), covers=["monitoring"], excludes=[],
                )
            )  # fmt: skip


def test_report_offboarding_counts_issues_after_closeout_and_the_return_rate(db, cli):
    _former(db, returned=True)
    reports.record_lessons(db, "acme", ["price", "service_quality"], "offer a smaller managed tier")
    shown = json.loads(cli("report", "offboarding", "--json").stdout)
    (acme,) = shown["former_clients"]
    assert acme["client"] == "acme" and acme["end_of_service"] == "2026-06-30"
    assert acme["lessons"]["reason_codes"] == ["price", "service_quality"]
    issues = acme["issues"]
    assert [a["title"] for a in issues["orphaned_alerts"]] == ["Agent late"]
    assert [(c["invoice"], c["kind"]) for c in issues["charges_after_end"]] == [("INV-JULY", "fee")]
    assert [t["title"] for t in issues["tickets_after_end"]] == ["Monthly patches"]
    assert acme["returned"] == {"agreement": "acme-back", "kind": "managed", "start": "2027-02-01"}
    assert shown["return_rate"] == {"former": 1, "returned": 1, "percent": 100.0}
    assert shown["totals"]["orphaned_alerts"] == 1 and shown["totals"]["charges_after_end"] == 1

    # a return after the window does not count
    later = json.loads(cli("report", "offboarding", "--json", "--months", "6").stdout)
    assert later["return_rate"] == {"former": 1, "returned": 0, "percent": 0.0}
    table = cli("report", "offboarding").stdout
    assert "acme" in table and "client return rate within 12 months: 1 of 1 (100.0%)" in table


def test_a_client_that_did_not_return(db):
    _former(db, returned=False)
    made = reports.offboarding_report(db)
    assert made["return_rate"] == {"former": 1, "returned": 0, "percent": 0.0}
    assert made["former_clients"][0]["returned"] is None


def test_lessons_from_the_cli_and_their_codes_checked(db, cli):
    _former(db, returned=False)
    cli("offboard", "lessons", "acme", "--reason", "moved_in_house", "--reason", "price", "--change", "cheaper tier")
    with db.reader() as s:
        lessons = s.scalars(select(OffboardingRun.lessons)).one()
    assert lessons["reason_codes"] == ["moved_in_house", "price"] and lessons["change"] == "cheaper tier"
    refused = cli("offboard", "lessons", "acme", "--reason", "weather", "--change", "x", check=False)
    assert refused.returncode != 0 and "weather" in refused.stderr
    with pytest.raises(ValidationFailed):
        reports.record_lessons(db, "acme", ["price"], " ")

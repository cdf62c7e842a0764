"""Billing through the services, on a real database: worked months checked by hand (DOMAIN.md)."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tenure import clock
from tenure.agreements.models import LedgerEntry
from tenure.agreements.service import log_time
from tenure.billing import service
from tenure.book.service import import_book
from tenure.clients.service import show_client
from tenure.errors import TenureError
from tenure.notices.models import Notice
from tests.support import empty

MSP = {
    "name": "Example IT",
    "hourly_rate": "150.00",
    "payment_terms_days": 10,
    "time_rounding_minutes": 15,
    "block_bonus": [{"min_hours": 20, "bonus_hours": 2}],
    "low_balance_hours": 3,
    "unused_prepaid": "refund",
}


def book(*clients):
    return {"version": 1, "msp": copy.deepcopy(MSP), "clients": list(clients)}


def lines_of(invoice):
    return [(line["kind"], line["amount"]) for line in invoice["lines"]]


MANAGED = {
    "key": "acme",
    "name": "Acme Dental",
    "contacts": [{"name": "Jo", "email": "jo@acme.example", "roles": ["billing"]}],
    "agreements": [
        {
            "key": "acme-m",
            "kind": "managed",
            "start": "2026-10-15",
            "monthly_fee": "1200.00",
            "included_hours": 10,
            "overage_rate": "120.00",
            "hourly_rate": "110.00",
            "covers": ["remote_support", "incident"],
            "excludes": ["malware_cleanup"],
        }
    ],
    "time_entries": [
        {"key": "t1", "date": "2026-10-20", "minutes": 420, "work_type": "remote_support"},
        {"key": "t2", "date": "2026-10-25", "minutes": 300, "work_type": "incident"},
        {"key": "t3", "date": "2026-10-28", "minutes": 61, "work_type": "malware_cleanup"},
    ],
}


def test_managed_month_by_hand(db):
    import_book(db, book(MANAGED))
    clock.set_now("2026-11-01T07:00:00Z")
    run = service.run_billing(db, "2026-11")
    (invoice,) = run.invoices
    # signed on the 15th: 17 of October's 31 days in arrears of the run = 1200 × 17 / 31 = 658.0645… → 658.06
    # 12 hours of covered work against 10 included: 2 hours overage at 120; malware cleanup is excluded:
    # 61 minutes rounds up to 75, billed at the agreement's hourly rate 110 → 137.50
    assert lines_of(invoice) == [
        ("catch_up", "658.06"),
        ("fee", "1200.00"),
        ("overage", "240.00"),
        ("hourly", "137.50"),
    ]
    assert invoice["total"] == "2235.56"
    assert (invoice["date"], invoice["due_date"], invoice["kind"], invoice["status"]) == (
        "2026-11-01",
        "2026-11-11",
        "monthly",
        "draft",
    )

    again = service.run_billing(db, "2026-11")
    assert again.invoices == [] and again.skipped == 1
    assert len(service.list_invoices(db)) == 1

    # a back-dated entry in October, after October was invoiced: billed once, on the next invoice, as overage
    log_time(db, "acme", 60, "remote_support", date(2026, 10, 30))
    clock.set_now("2026-12-01T07:00:00Z")
    (december,) = service.run_billing(db, "2026-12").invoices
    assert lines_of(december) == [("fee", "1200.00"), ("overage", "120.00")]


MONITORED = {
    "key": "harbor",
    "name": "Harbor Law",
    "agreements": [
        {
            "key": "harbor-w",
            "kind": "monitoring",
            "start": "2026-09-01",
            "monthly_fee": "100.00",
            "block_hours_per_month": 2,
            "covers": ["monitoring", "patching"],
        }
    ],
    "blocks": [{"key": "harbor-b1", "purchased": "2026-09-01", "hours": 3, "price": "450.00"}],
    "time_entries": [{"key": "t1", "date": "2026-09-10", "minutes": 30, "work_type": "remote_support"}],
}


def test_monitoring_paid_from_the_block_until_it_is_short(db):
    import_book(db, book(MONITORED))
    clock.set_now("2026-10-01T06:00:00Z")
    (october,) = service.run_billing(db, "2026-10").invoices
    # September 1: 3 h on the block ≥ 2 h → deducted instead of the fee (a zero line saying so);
    # the 30 minutes of work take the block's last hour down to 0:30; October 1: 0:30 < 2 h → the fee is charged
    assert lines_of(october) == [("monitoring_block", "0.00"), ("fee", "100.00")]
    assert "deducted from block harbor-b1" in october["lines"][0]["description"]
    view, ledger = show_client(db, "harbor", date(2026, 10, 1))
    assert view.block_balance_minutes == 30 == sum(e["minutes"] for e in ledger)
    assert [e["kind"] for e in ledger] == ["purchase", "monitoring", "deduction"]


RETAINER = {
    "key": "cedar",
    "name": "Cedar Architects",
    "contacts": [{"name": "Ana", "email": "ana@cedar.example", "roles": ["billing"]}],
    "agreements": [{"key": "cedar-r", "kind": "retainer", "start": "2026-10-01", "hourly_rate": "100.00"}],
    "retainer_deposits": [{"key": "d1", "date": "2026-10-01", "amount": "500.00"}],
    "time_entries": [
        {"key": "t1", "date": "2026-10-05", "minutes": 240, "work_type": "project"},
        {"key": "t2", "date": "2026-10-20", "minutes": 120, "work_type": "remote_support"},
    ],
}


def test_retainer_never_below_zero_and_the_shortfall_is_billed_at_its_rate(db):
    import_book(db, book(RETAINER))
    clock.set_now("2026-11-01T06:00:00Z")
    (invoice,) = service.run_billing(db, "2026-11").invoices
    # 4 h × 100 = 400 from the retainer, then 2 h = 200 of which 100 is left: 100 billed at the retainer rate
    assert lines_of(invoice) == [("retainer", "100.00")]
    view, _ = show_client(db, "cedar", date(2026, 11, 1))
    assert view.retainer_balance == Decimal("0.00")
    with db.reader() as s:
        kinds = set(s.scalars(select(Notice.kind).where(Notice.client_id.is_not(None))))
    assert "retainer_zero" in kinds
    logged = log_time(db, "cedar", 30, "remote_support", date(2026, 11, 2))
    assert logged.on_hold
    service.deposit(db, "cedar", Decimal("300.00"), date(2026, 11, 3))
    assert not log_time(db, "cedar", 30, "remote_support", date(2026, 11, 4)).on_hold


def test_prepayments_get_their_own_invoice_and_bonus_hours(db):
    import_book(db, book({"key": "willow", "name": "Willow"}))
    clock.set_now("2026-11-05T10:00:00Z")
    invoice = service.buy_block(db, "willow", Decimal(20), Decimal("2400.00"))
    assert invoice["kind"] == "prepayment" and invoice["date"] == "2026-11-05" and invoice["total"] == "2400.00"
    view, ledger = show_client(db, "willow", date(2026, 11, 5))
    assert view.block_balance_minutes == 22 * 60 and view.klass == "prepaid"
    assert [e["kind"] for e in ledger] == ["purchase", "bonus"]


def test_void_releases_the_work_and_a_rerun_replaces_the_invoice(db):
    import_book(db, book(MANAGED))
    clock.set_now("2026-11-01T07:00:00Z")
    (first,) = service.run_billing(db, "2026-11").invoices
    service.change_status(db, first["number"], "issue")
    with pytest.raises(TenureError, match="is issued; only a draft invoice can be issued"):
        service.change_status(db, first["number"], "issue")
    service.change_status(db, first["number"], "void")
    (second,) = service.run_billing(db, "2026-11").invoices
    assert second["number"] != first["number"] and lines_of(second) == lines_of(first)
    statuses = {i["number"]: i["status"] for i in service.list_invoices(db, client="acme")}
    assert statuses == {first["number"]: "void", second["number"]: "draft"}


def test_a_credit_whose_days_were_billed_by_an_invoice_voided_since_is_billed_back(db):
    # March billed (Jan and Feb caught up); the end set to the 20th later, so April credits 21 to 31 March; then
    # March's invoice is voided: the rerun bills Jan to 20 March and takes back the credit no charge stands behind
    from tenure.book import objects

    managed = copy.deepcopy(MANAGED)
    managed["agreements"][0] |= {"start": "2027-01-01", "monthly_fee": "1000.00"}
    managed["time_entries"] = []
    import_book(db, book(managed))
    clock.set_now("2027-03-01T07:00:00Z")
    (march,) = service.run_billing(db, "2027-03").invoices
    assert march["total"] == "3000.00"
    service.change_status(db, march["number"], "issue")
    objects.remove_item(db, "acme", "agreements", "acme-m", date(2027, 3, 20))
    clock.set_now("2027-04-01T07:00:00Z")
    (april,) = service.run_billing(db, "2027-04").invoices
    assert lines_of(april) == [("credit", "-354.84")]  # 11 of 31 days of 1000.00
    service.change_status(db, march["number"], "void")
    (again,) = service.run_billing(db, "2027-03").invoices
    assert lines_of(again) == [
        ("catch_up", "1000.00"), ("catch_up", "1000.00"), ("fee", "645.16"), ("fee", "354.84")
    ]
    assert "credited on an invoice since voided, billed back" in again["lines"][-1]["description"]
    # January 1 to March 20 is billed once in all (2645.16), and nothing is left to do the next month
    valid = [i for i in service.list_invoices(db, client="acme") if i["status"] != "void"]
    assert sum(Decimal(i["total"]) for i in valid) == Decimal("2645.16")
    clock.set_now("2027-05-01T07:00:00Z")
    assert service.run_billing(db, "2027-05").invoices == []


def test_an_end_set_earlier_after_the_invoice_bills_the_work_past_it_that_its_hours_paid(db):
    # October's work was paid by the included hours and invoiced; the agreement is then ended on 18 October:
    # the work of the 20th and 25th is no longer covered, and the next invoice carries the difference
    from tenure.book import objects

    import_book(db, book(MANAGED))
    clock.set_now("2026-11-01T07:00:00Z")
    service.run_billing(db, "2026-11")
    objects.remove_item(db, "acme", "agreements", "acme-m", date(2026, 10, 18))
    clock.set_now("2026-12-01T07:00:00Z")
    (december,) = service.run_billing(db, "2026-12").invoices
    adjustments = [(line["description"].split(" (")[0], line["amount"]) for line in december["lines"]
                   if line["kind"] == "adjustment"]  # fmt: skip
    # all of it is now at the MSP's rate (no agreement is active then): the 10 included hours and the 2 of
    # overage of the 20th and 25th, and the hour and a quarter of malware cleanup at the agreement's rate
    assert sorted(adjustments) == sorted([
        ("Adjustment to invoiced overage: -2 hours at 120.00/hour", "-240.00"),
        ("Adjustment to invoiced hourly work: -1.25 hours at 110.00/hour", "-137.50"),
        ("Adjustment to invoiced hourly work: +13.25 hours at 150.00/hour", "1987.50"),
    ])  # fmt: skip


def test_final_invoice_credits_days_past_the_end_and_refunds_prepaid(db):
    client = copy.deepcopy(MANAGED)
    client["blocks"] = [{"key": "acme-b1", "purchased": "2026-10-01", "hours": 10, "price": "1000.00"}]
    client["time_entries"] = []
    import_book(db, book(client))
    clock.set_now("2026-11-01T07:00:00Z")
    service.run_billing(db, "2026-11")
    clock.set_now("2026-11-16T09:00:00Z")
    log_time(db, "acme", 60, "malware_cleanup", date(2026, 11, 10))
    final = service.final_invoice(db, "acme", date(2026, 11, 15))
    # November billed in advance; service ends on the 15th: 15 days credited = -1200 × 15 / 30 = -600.00;
    # the hour of malware cleanup is paid by the block (used before billing), leaving 9 h of 10 refunded at
    # 1000 / 10 per hour = 900.00
    assert final["kind"] == "final"
    assert lines_of(final) == [("credit", "-600.00"), ("refund", "-900.00")]
    assert service.final_invoice(db, "acme", date(2026, 11, 15))["number"] == final["number"]
    view, _ = show_client(db, "acme", date(2026, 11, 16))
    assert view.block_balance_minutes == 0
    assert view.agreements[0]["end"] == "2026-11-15"


def test_csv_has_one_row_per_line(db):
    import_book(db, book(MANAGED))
    clock.set_now("2026-11-01T07:00:00Z")
    service.run_billing(db, "2026-11")
    rows = service.csv_rows(service.list_invoices(db, period="2026-11"))
    assert len(rows) == 4 and sum(Decimal(r["amount"]) for r in rows) == Decimal(rows[0]["invoice_total"])


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.tuples(st.integers(0, 89), st.integers(1, 300)), min_size=1, max_size=25))
def test_every_minute_is_billed_once_across_runs_and_reruns(db, entries):
    empty(db)
    start = date(2026, 8, 1)
    client = {
        "key": "adhoc",
        "name": "Ad hoc",
        "time_entries": [
            {
                "key": f"t{i}",
                "date": (start.toordinal() + day and date.fromordinal(start.toordinal() + day)).isoformat(),
                "minutes": minutes,
                "work_type": "remote_support",
            }
            for i, (day, minutes) in enumerate(entries)
        ],
    }
    import_book(db, book(client))
    billed = 0
    for period in ("2026-09", "2026-10", "2026-11", "2026-11"):  # the last is a rerun
        clock.set_now(f"{period}-01T06:00:00Z")
        for invoice in service.run_billing(db, period).invoices:
            billed += sum(line["minutes"] or 0 for line in invoice["lines"])
    rounded = sum(-(-minutes // 15) * 15 for _, minutes in entries)
    assert billed == rounded
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0  # nothing prepaid, nothing posted

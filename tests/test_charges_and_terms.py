"""Charges and agreement terms (DOMAIN.md "Charges and terms"): parts billed once in arrears, the owner's view of
them, fees invoiced several months in advance, terms that end or renew, and the notice before a term ends."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from tenure import clock
from tenure.agreements.terms import record_term_notices
from tenure.billing import service
from tenure.billing.charges import add_charge, edit_charge, list_charges, void_charge
from tenure.book.service import export_book, import_book
from tenure.clients.service import show_client
from tenure.errors import Conflict, ValidationFailed
from tenure.notices.models import Notice
from tenure.reports.service import profitability_report
from tests.test_billing import book, lines_of

WILLOW = {"key": "willow", "name": "Willow Dental"}


# -------------------------------------------------------------------------------------------- charges


def test_a_charge_is_billed_once_on_the_next_monthly_invoice(db):
    import_book(db, book(WILLOW))
    clock.set_now("2026-10-20T10:00:00Z")
    made = add_charge(db, "willow", "Replacement SSD, 1 TB", Decimal("240.00"), cost=Decimal("180.00"),
                      quantity=Decimal(2))  # fmt: skip
    assert (made["key"], made["date"], made["invoice"]) == ("ch-20261020-1", "2026-10-20", None)
    clock.set_now("2026-11-01T07:00:00Z")
    (november,) = service.run_billing(db, "2026-11").invoices
    (line,) = november["lines"]
    assert (line["kind"], line["quantity"], line["unit_price"], line["amount"]) == ("charge", "2", "120.00", "240.00")
    assert line["description"] == "Replacement SSD, 1 TB (2026-10-20)"
    assert service.run_billing(db, "2026-11").invoices == []  # a rerun changes nothing
    clock.set_now("2026-12-01T07:00:00Z")
    assert service.run_billing(db, "2026-12").invoices == []  # billed once
    assert list_charges(db, "willow")[0]["invoice"] == november["number"]


def test_a_charge_of_a_month_already_invoiced_goes_on_the_next_one(db):
    import_book(db, book(WILLOW))
    clock.set_now("2026-11-01T07:00:00Z")
    service.run_billing(db, "2026-11")
    clock.set_now("2026-11-03T10:00:00Z")
    add_charge(db, "willow", "Cable run", "85.50", date=date(2026, 10, 28))  # found late, dated October
    add_charge(db, "willow", "Router", "300.00", date=date(2026, 11, 3))  # November's: December's invoice too
    add_charge(db, "willow", "Toner", "60.00", date=date(2026, 12, 2), key="toner")  # not before January
    clock.set_now("2026-12-01T07:00:00Z")
    (december,) = service.run_billing(db, "2026-12").invoices
    assert lines_of(december) == [("charge", "85.50"), ("charge", "300.00")]
    clock.set_now("2027-01-01T07:00:00Z")
    (january,) = service.run_billing(db, "2027-01").invoices
    assert lines_of(january) == [("charge", "60.00")]


def test_a_voided_charge_is_never_billed_or_credited_once_when_it_was(db):
    import_book(db, book(WILLOW))
    clock.set_now("2026-10-20T10:00:00Z")
    add_charge(db, "willow", "Spare keyboard", "40.00", key="kb")
    add_charge(db, "willow", "Monitor", "199.00", key="mon")
    void_charge(db, "willow", "kb", "returned unopened")
    clock.set_now("2026-11-01T07:00:00Z")
    (november,) = service.run_billing(db, "2026-11").invoices
    assert lines_of(november) == [("charge", "199.00")]
    service.change_status(db, november["number"], "issue")
    clock.set_now("2026-11-10T10:00:00Z")
    voided = void_charge(db, "willow", "mon", "wrong client")
    assert voided["voided"] and voided["invoice"] == november["number"]
    clock.set_now("2026-12-01T07:00:00Z")
    (december,) = service.run_billing(db, "2026-12").invoices
    assert lines_of(december) == [("adjustment", "-199.00")]
    assert service.get_invoice(db, november["number"])["lines"] == november["lines"]  # never edited
    clock.set_now("2027-01-01T07:00:00Z")
    assert service.run_billing(db, "2027-01").invoices == []


def test_voiding_the_invoice_that_billed_a_charge_bills_it_again(db):
    import_book(db, book(WILLOW))
    clock.set_now("2026-10-20T10:00:00Z")
    add_charge(db, "willow", "Switch", "150.00")
    clock.set_now("2026-11-01T07:00:00Z")
    (first,) = service.run_billing(db, "2026-11").invoices
    service.change_status(db, first["number"], "void")
    (again,) = service.run_billing(db, "2026-11").invoices
    assert lines_of(again) == [("charge", "150.00")] and again["number"] != first["number"]


def test_a_charge_is_changed_in_place_until_it_is_billed(db):
    import_book(db, book(WILLOW))
    clock.set_now("2026-10-20T10:00:00Z")
    add_charge(db, "willow", "Switch", "150.00", key="sw")
    changed = edit_charge(db, "willow", "sw", {"amount": "165.00", "description": "Switch, 24 ports", "cost": "120.00"})
    assert (changed["amount"], changed["description"], changed["cost"]) == ("165.00", "Switch, 24 ports", "120.00")
    clock.set_now("2026-11-01T07:00:00Z")
    (november,) = service.run_billing(db, "2026-11").invoices
    assert lines_of(november) == [("charge", "165.00")]
    with pytest.raises(Conflict, match="billed already: its amount stays as billed"):
        edit_charge(db, "willow", "sw", {"amount": "100.00"})
    assert edit_charge(db, "willow", "sw", {"cost": "110.00"})["cost"] == "110.00"  # the owner's figure may change


def test_charges_are_refused_with_every_problem_named(db):
    import_book(db, book(WILLOW))
    with pytest.raises(ValidationFailed) as refused:
        add_charge(db, "willow", " ", "-3.00", cost="1.234", quantity="0")
    assert [p.split(":")[0] for p in refused.value.problems] == ["description", "amount", "cost", "quantity"]


def test_charges_in_the_book_round_trip_and_a_billed_one_keeps_its_amount(db):
    client = copy.deepcopy(WILLOW)
    client["charges"] = [
        {"key": "c1", "date": "2026-10-02", "description": "UPS battery", "amount": "129.00", "cost": "90.00"},
        {"key": "c2", "date": "2026-10-09", "description": "Patch cables", "quantity": 10, "amount": "45.00"},
    ]
    import_book(db, book(client))
    exported = export_book(db)
    assert exported["clients"][0]["charges"] == [
        {"key": "c1", "date": "2026-10-02", "description": "UPS battery", "amount": "129.00", "cost": "90.00"},
        {"key": "c2", "date": "2026-10-09", "description": "Patch cables", "quantity": "10", "amount": "45.00"},
    ]
    assert import_book(db, exported).as_json()["updated"] == {}  # export then import: the same book
    clock.set_now("2026-11-01T07:00:00Z")
    (november,) = service.run_billing(db, "2026-11").invoices
    assert lines_of(november) == [("charge", "129.00"), ("charge", "45.00")]
    assert november["lines"][1]["unit_price"] == "4.50"
    changed = copy.deepcopy(exported)
    changed["clients"][0]["charges"][0]["amount"] = "200.00"
    with pytest.raises(ValidationFailed, match=r"clients\[0\]\.charges\[0\]: charge 'c1' was billed already"):
        import_book(db, changed)


def test_the_cli_adds_a_charge(db, cli):
    import_book(db, book(WILLOW))
    made = cli("charge", "add", "willow", "--description", "Replacement SSD", "--amount", "240.00", "--cost", "180.00",
               "--date", "2026-10-20", "--json")  # fmt: skip
    assert json.loads(made.stdout) | {"client": "willow"} == json.loads(made.stdout)
    assert json.loads(made.stdout)["amount"] == "240.00" and json.loads(made.stdout)["cost"] == "180.00"
    refused = cli("charge", "add", "nobody", "--description", "x", "--amount", "1.00", check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("error: no client 'nobody'")


def test_a_charge_is_revenue_in_its_month_and_its_cost_is_cost(db):
    msp_book = book(WILLOW)
    msp_book["msp"] |= {"labor_cost_per_hour": "50.00", "target_effective_rate": "100.00"}
    msp_book["clients"][0]["time_entries"] = [
        {"key": "t1", "date": "2026-10-05", "minutes": 60, "work_type": "remote_support"}
    ]
    import_book(db, msp_book)
    clock.set_now("2026-10-20T10:00:00Z")
    add_charge(db, "willow", "Firewall", "1000.00", cost=Decimal("800.00"))
    add_charge(db, "willow", "Voided", "500.00", key="v")
    void_charge(db, "willow", "v")
    report = profitability_report(db, "2026-10", "2026-10", "willow")
    (october,) = report["clients"][0]["months"]
    # an hour at the MSP's 150.00 and the firewall sold for 1000.00; an hour of labor (50.00) and its 800.00
    assert (october["revenue"], october["charges"], october["cost"], october["margin"]) == (
        "1150.00", "1000.00", "850.00", "300.00"
    )
    assert october["effective_rate"] == "350.00"  # what is left once the firewall is paid, per hour of time


# ------------------------------------------------------------------------------------- billing interval


QUARTERLY = {
    "key": "cedar",
    "name": "Cedar Law",
    "agreements": [
        {"key": "cedar-m", "kind": "managed", "start": "2026-01-01", "monthly_fee": "300.00", "included_hours": 2,
         "overage_rate": "120.00", "covers": ["remote_support"], "billing_interval_months": 3}
    ],
}  # fmt: skip


def test_a_quarterly_paid_agreement_is_invoiced_every_third_month_with_three_months_of_fee(db):
    import_book(db, book(QUARTERLY))
    fees = {}
    for month in range(1, 8):
        period = f"2026-{month:02d}"
        clock.set_now(f"{period}-01T07:00:00Z")
        fees[period] = [lines_of(i) for i in service.run_billing(db, period).invoices]
    assert fees == {
        "2026-01": [[("fee", "300.00"), ("fee", "300.00"), ("fee", "300.00")]],  # January to March, in advance
        "2026-02": [],
        "2026-03": [],
        "2026-04": [[("fee", "300.00"), ("fee", "300.00"), ("fee", "300.00")]],
        "2026-05": [],
        "2026-06": [],
        "2026-07": [[("fee", "300.00"), ("fee", "300.00"), ("fee", "300.00")]],
    }
    # the agreement stays monthly for coverage: two included hours each month, not six a quarter
    from tenure.agreements.service import log_time

    clock.set_now("2026-07-10T09:00:00Z")
    assert log_time(db, "cedar", 180, "remote_support", date(2026, 7, 9)).portions[1]["line_kind"] == "overage"
    view, _ = show_client(db, "cedar", date(2026, 5, 15))
    assert view.klass == "agreement"


def test_a_quarter_that_starts_mid_month_is_prorated_and_an_end_set_later_is_credited(db):
    client = copy.deepcopy(QUARTERLY)
    client["agreements"][0]["start"] = "2026-01-15"
    import_book(db, book(client))
    clock.set_now("2026-01-01T07:00:00Z")
    (january,) = service.run_billing(db, "2026-01").invoices
    # 17 of January's 31 days: 300 × 17 / 31 = 164.516… → 164.52, then February and March whole
    assert lines_of(january) == [("fee", "164.52"), ("fee", "300.00"), ("fee", "300.00")]
    client["agreements"][0]["end"] = "2026-02-28"  # ended early: March was paid in advance
    import_book(db, book(client))
    clock.set_now("2026-02-01T07:00:00Z")
    (february,) = service.run_billing(db, "2026-02").invoices
    assert lines_of(february) == [("credit", "-300.00")]


def test_a_monitoring_agreement_paid_from_a_block_stays_monthly():
    from tenure.book.validate import parse

    client = {"key": "harbor", "name": "Harbor", "agreements": [
        {"key": "h-w", "kind": "monitoring", "start": "2026-01-01", "monthly_fee": "100.00",
         "block_hours_per_month": 2, "billing_interval_months": 12}
    ]}  # fmt: skip
    with pytest.raises(ValidationFailed, match="invoiced monthly"):
        parse(book(client))


# ---------------------------------------------------------------------------------------------- terms


YEARLY = {
    "key": "birch",
    "name": "Birch Accounting",
    "agreements": [
        {"key": "birch-m", "kind": "managed", "start": "2026-01-01", "monthly_fee": "1000.00", "included_hours": 5,
         "overage_rate": "120.00", "covers": ["remote_support"], "term_months": 12, "renewal": "ends"}
    ],
}  # fmt: skip


def test_a_yearly_term_with_renewal_ends_ends_the_agreement_on_its_last_day(db):
    import_book(db, book(YEARLY))
    view, _ = show_client(db, "birch", date(2026, 6, 1))
    assert view.agreements[0]["end"] == "2026-12-31" and view.klass == "agreement"  # computed, not typed
    clock.set_now("2026-12-01T07:00:00Z")
    (december,) = service.run_billing(db, "2026-12").invoices
    assert ("fee", "1000.00") in lines_of(december)
    clock.set_now("2027-01-01T07:00:00Z")
    assert service.run_billing(db, "2027-01").invoices == []  # the term ended: no more fees
    view, _ = show_client(db, "birch", date(2027, 1, 2))
    assert view.klass != "agreement"
    exported = export_book(db)["clients"][0]["agreements"][0]
    assert (exported["renewal"], exported["end"]) == ("ends", "2026-12-31")
    # renewed by hand for another term: the end follows the term, and no typed end is left behind
    renewed = copy.deepcopy(YEARLY)
    renewed["agreements"][0] |= {"term_months": 24}
    import_book(db, book(renewed))
    assert show_client(db, "birch", date(2027, 1, 2))[0].agreements[0]["end"] == "2027-12-31"
    renewed["agreements"][0] |= {"renewal": "auto"}
    import_book(db, book(renewed))
    assert show_client(db, "birch", date(2027, 1, 2))[0].agreements[0]["end"] is None


def test_the_owner_is_told_once_before_a_term_ends(db, monkeypatch):
    monkeypatch.setenv("TENURE_STAFF_EMAIL", "owner@example-it.example")
    auto = copy.deepcopy(YEARLY)
    auto["agreements"][0]["renewal"] = "auto"
    import_book(db, book(auto))
    assert record_term_notices(db, date(2026, 10, 31)) == 0  # 61 days before the term's last day, December 31
    assert record_term_notices(db, date(2026, 11, 1)) == 1  # 60 days before
    assert record_term_notices(db, date(2026, 11, 20)) == 0  # once
    clock.set_now("2026-12-30T09:00:00Z")
    assert record_term_notices(db) == 0
    with db.reader() as s:
        (notice,) = s.scalars(select(Notice).where(Notice.kind == "term_ending"))
    assert notice.to == ["owner@example-it.example"] and notice.state == "waiting"
    assert notice.subject == "Birch Accounting: agreement birch-m renews on 2027-01-01"
    assert notice.data["term_end"] == "2026-12-31" and notice.data["days_left"] == 60
    # an automatic renewal: the next term's notice comes 60 days before its end, once
    assert record_term_notices(db, date(2027, 11, 1)) == 1
    assert record_term_notices(db, date(2027, 11, 2)) == 0


def test_a_term_notice_waits_for_the_msps_setting(db):
    ending = book(YEARLY)
    ending["msp"]["term_notice_days"] = 30
    import_book(db, ending)
    assert record_term_notices(db, date(2026, 11, 30)) == 0
    assert record_term_notices(db, date(2026, 12, 1)) == 1
    with db.reader() as s:
        (notice,) = s.scalars(select(Notice).where(Notice.kind == "term_ending"))
    assert notice.subject == "Birch Accounting: agreement birch-m ends on 2026-12-31"
    assert export_book(db)["msp"]["term_notice_days"] == 30


def test_importing_the_same_book_again_changes_nothing_when_the_end_was_computed(db):
    import_book(db, book(YEARLY))
    again = import_book(db, book(YEARLY))
    assert again.as_json()["updated"] == {}

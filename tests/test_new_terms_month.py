"""New money terms from a date are the same agreement going on: in the month they start, the included hours
are one month's, shared by the old terms and the new, not a second month's."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from tenure import clock
from tenure.agreements.preview import time_warnings
from tenure.agreements.rules import lineage_of
from tenure.agreements.service import log_time
from tenure.billing.service import run_billing
from tenure.book import objects
from tenure.book.service import import_book
from tests.books import SMALL


@pytest.fixture
def book(db):
    clock.set_now("2026-11-25T12:00:00Z")
    import_book(db, copy.deepcopy(SMALL))
    run_billing(db, "2026-09")  # billed: its fee changes only from a date
    return db


def test_the_month_new_terms_start_in_has_one_months_included_hours(book):
    objects.patch_item(
        book, "acme", "agreements", "acme-managed", {"monthly_fee": "1500.00", "included_hours": 12},
        effective=date(2026, 11, 16),
    )  # fmt: skip
    before = log_time(book, "acme", 540, "remote_support", date(2026, 11, 10))  # 9 of the old terms' 10 hours
    assert [(p["layer"], p["minutes"], p["agreement"]) for p in before.portions] == [
        ("included", 540, "acme-managed")
    ]
    # the new terms include 12 hours a month: 3 are left of November's, not 12 more
    after = log_time(book, "acme", 300, "remote_support", date(2026, 11, 20))
    included = [(p["minutes"], p["agreement"]) for p in after.portions if p["layer"] == "included"]
    assert included == [(180, "acme-managed-from-2026-11-16")]
    assert sum(p["minutes"] for p in after.portions) == 300
    # December is a month of its own, under the new terms
    december = log_time(book, "acme", 720, "remote_support", date(2026, 12, 2))
    assert [(p["layer"], p["minutes"]) for p in december.portions] == [("included", 720)]


def test_new_terms_keys_lead_back_to_the_agreement_signed():
    assert lineage_of("acme-managed-from-2026-11-16") == "acme-managed"
    assert lineage_of("acme-managed-from-2026-11-16-from-2027-02-01") == "acme-managed"
    assert lineage_of("from-2026") == "from-2026"  # not a date: a key of its own


def test_work_beyond_the_months_included_hours_is_said_to_be_so():
    overage = [{"layer": "billable", "minutes": 60, "rate": "120.00", "amount": "120.00", "line_kind": "overage"}]
    assert time_warnings("acme", "remote_support", overage, False, False) == [
        "The month's included hours are used up: 60 min would be billed at 120.00/h (120.00)."
    ]

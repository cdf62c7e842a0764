"""What a bookkeeper types is checked where it is typed: an amount names its field, a filter no invoice can
match is refused, an agreement cannot end before it starts; and a time entry says how it is paid now."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tenure import clock
from tenure.agreements.changes import get_time_entry
from tenure.agreements.models import Agreement, Block
from tenure.agreements.service import log_time
from tenure.billing import service as billing
from tenure.book import objects
from tenure.book.demo import load_demo
from tenure.errors import ValidationFailed


@pytest.fixture
def demo(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    return db


def _blocks(db) -> int:
    with db.reader() as s:
        return s.scalar(select(func.count()).select_from(Block))


@pytest.mark.parametrize(
    ("price", "said"),
    [
        ("-2400", "price: a block's price is not negative, not -2400.00"),
        ("2000.005", "price: '2000.005' has fractions of a cent"),
    ],
)
def test_a_block_at_a_price_no_one_pays_is_refused_and_nothing_is_bought(demo, price, said):
    before = _blocks(demo)
    with pytest.raises(ValidationFailed) as refused:
        billing.buy_block(demo, "maple", Decimal(20), Decimal(price))
    assert str(refused.value).startswith(said)
    assert _blocks(demo) == before
    assert billing.buy_block(demo, "maple", Decimal(20), Decimal(0))["total"] == "0.00"  # a block given free


def test_a_deposit_in_fractions_of_a_cent_names_its_field(demo):
    with pytest.raises(ValidationFailed, match=r"^amount: '1\.005' has fractions of a cent"):
        billing.deposit(demo, "cedar", Decimal("1.005"))
    with pytest.raises(ValidationFailed, match=r"^amount: a deposit is a positive amount of money, not -5\.00"):
        billing.deposit(demo, "cedar", Decimal(-5))


@pytest.mark.parametrize(("field", "value"), [("status", "unpaid"), ("kind", "credit")])
def test_an_invoice_filter_no_invoice_can_match_is_refused_not_answered_with_nothing(demo, field, value):
    with pytest.raises(ValidationFailed, match=rf"^{field}: '{value}' is not one of "):
        billing.list_invoices(demo, **{field: value})
    assert billing.list_invoices(demo, status="void") == []  # a real status that matches nothing is fine


def test_an_agreement_cannot_end_before_its_first_day(demo):
    with demo.reader() as s:
        start = s.scalar(select(Agreement.start).where(Agreement.key == "acme-managed"))
    with pytest.raises(ValidationFailed, match=rf"^end: {date(2020, 1, 1)} is before the agreement's start"):
        objects.remove_item(demo, "acme", "agreements", "acme-managed", date(2020, 1, 1))
    with demo.reader() as s:
        assert s.scalar(select(Agreement.end).where(Agreement.key == "acme-managed")) is None  # unchanged
    ended = objects.remove_item(demo, "acme", "agreements", "acme-managed", start)
    assert (ended["outcome"], ended["end"]) == ("ended", start.isoformat())


def test_a_time_entry_read_back_says_how_it_is_paid_as_its_log_did(demo):
    logged = log_time(demo, "acme", 45, "remote_support", date(2026, 11, 24))
    shown = get_time_entry(demo, logged.id)
    assert shown["paid_by"] == logged.portions != []
    assert {p["layer"] for p in shown["paid_by"]} == {"included"}


def test_work_on_hold_is_on_hold_no_more_once_a_deposit_pays_it(demo):
    # cedar's retainer: drained to zero, then work is logged on hold; a deposit that covers it releases it
    from tenure.clients.service import show_client

    balance = show_client(demo, "cedar", date(2026, 11, 24))[0].retainer_balance
    if balance > 0:
        log_time(demo, "cedar", int(balance / Decimal("125.00") * 60) + 60, "remote_support", date(2026, 11, 24))
    held = log_time(demo, "cedar", 30, "remote_support", date(2026, 11, 24))
    assert held.on_hold
    billing.deposit(demo, "cedar", Decimal("500.00"))
    assert get_time_entry(demo, held.id)["on_hold"] is False
    assert {p["layer"] for p in get_time_entry(demo, held.id)["paid_by"]} == {"retainer"}

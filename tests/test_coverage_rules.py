"""The coverage layers (DOMAIN.md "How an hour of work is paid"): worked examples and properties."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.agreements.rules import (
    Allocation,
    Deposit,
    Expiry,
    MonitoringMonth,
    Policy,
    Portion,
    PrepaidBlock,
    Terms,
    Work,
    allocate,
    bonus_minutes,
    burn_rate,
    forecast_run_out,
    month_of,
    revenue_of,
    round_up,
    threshold_crossings,
)
from tenure.billing.rules import usage_lines
from tenure.money import ZERO, round_cents

D = Decimal
POLICY = Policy(rounding_minutes=15, hourly_rate=D("150.00"), block_bonus=((20, 2), (50, 7)))


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def work(key: str, when: str, minutes: int, work_type: str = "remote_support") -> Work:
    return Work(key, day(when), minutes, work_type)


def portions_of(result: Allocation, work_key: str) -> list[tuple[str, int, str | None, Decimal]]:
    """A work's portions as (layer, minutes, line kind or block key, amount): short to compare."""
    return [(p.layer, p.minutes, p.line_kind or p.block_key, p.amount) for p in result.portions_for(work_key)]


# ----------------------------------------------------------------------------------------- small rules


@pytest.mark.parametrize(("minutes", "unit", "expected"), [
    (0, 15, 0), (1, 15, 15), (15, 15, 15), (16, 15, 30), (90, 15, 90), (7, 1, 7), (7, 0, 7), (61, 30, 90),
])
def test_round_up(minutes: int, unit: int, expected: int) -> None:
    assert round_up(minutes, unit) == expected


def test_round_up_refuses_negative_time() -> None:
    with pytest.raises(ValueError):
        round_up(-1, 15)


@pytest.mark.parametrize(("hours", "expected_bonus_hours"), [
    (0, 0), (19, 0), (20, 2), (49, 2), (50, 7), (100, 7), (D("20.5"), 2),
])
def test_bonus_is_the_largest_tier_reached(hours: int | Decimal, expected_bonus_hours: int) -> None:
    tiers = ((50, 7), (20, 2))  # unsorted on purpose
    assert bonus_minutes(int(hours * 60), tiers) == expected_bonus_hours * 60


def test_no_bonus_table_no_bonus() -> None:
    assert bonus_minutes(6000, ()) == 0


def test_block_price_per_hour_counts_the_bonus() -> None:
    block = PrepaidBlock("b", day("2026-09-01"), 20 * 60, 2 * 60, D("2400.00"))
    assert block.total_minutes == 1320
    assert round_cents(block.price_per_hour) == D("109.09")  # 2400 / 22
    assert round_cents(block.value_of(330)) == D("600.00")  # 5.5 hours of 22


def test_terms_active_and_covers() -> None:
    terms = Terms("m", "managed", day("2026-01-01"), end=day("2026-06-30"),
                  covers=frozenset({"incident", "malware_cleanup"}), excludes=frozenset({"malware_cleanup"}))
    assert not terms.active_on(day("2025-12-31"))
    assert terms.active_on(day("2026-01-01")) and terms.active_on(day("2026-06-30"))
    assert not terms.active_on(day("2026-07-01"))
    assert terms.covers_work("incident")
    assert not terms.covers_work("malware_cleanup")  # excludes wins
    assert not terms.covers_work("training")


# ----------------------------------------------------------------------------- managed: included hours

MANAGED = Terms(
    "acme-managed", "managed", day("2026-01-01"), monthly_fee=D("1200.00"), included_minutes=600,
    overage_rate=D("120.00"), hourly_rate=D("130.00"),
    covers=frozenset({"maintenance", "remote_support", "incident"}), excludes=frozenset({"malware_cleanup"}),
)


def test_managed_included_then_overage_and_the_malware_exclusion() -> None:
    works = [
        work("t6", "2026-10-25", 10, "training"),  # not covered: hourly at the agreement's rate
        work("t1", "2026-10-03", 90, "maintenance"),  # 90 of 600 included
        work("t3", "2026-10-12", 50, "incident"),  # 60 rounded, nothing left: overage at 120
        work("t2", "2026-10-10", 500, "remote_support"),  # 510 rounded: the remaining 510
        work("t4", "2026-10-20", 40, "malware_cleanup"),  # excluded: hourly at 130 although covered
        work("t5", "2026-11-02", 30, "maintenance"),  # a new month: included again, nothing carried
    ]
    result = allocate(works, [MANAGED], [], [], POLICY, through=day("2026-11-30"))

    assert portions_of(result, "t1") == [("included", 90, None, ZERO)]
    assert portions_of(result, "t2") == [("included", 510, None, ZERO)]
    assert portions_of(result, "t3") == [("billable", 60, "overage", D("120"))]
    assert portions_of(result, "t4") == [("billable", 45, "hourly", D("97.5"))]
    assert portions_of(result, "t6") == [("billable", 15, "hourly", D("32.5"))]
    assert portions_of(result, "t5") == [("included", 30, None, ZERO)]
    assert [p.work_key for p in result.portions] == ["t1", "t2", "t3", "t4", "t6", "t5"]

    october = [p for p in result.portions if p.date < day("2026-11-01")]
    lines = usage_lines(october)
    assert [(ln.kind, ln.minutes, ln.unit_price, ln.amount) for ln in lines] == [
        ("overage", 60, D("120.00"), D("120.00")),
        ("hourly", 60, D("130.00"), D("130.00")),  # 45 + 15 minutes at 130
    ]
    assert all(ln.agreement_key == "acme-managed" for ln in lines)


def test_included_hours_go_by_date_then_key() -> None:
    small = Terms("m", "managed", day("2026-01-01"), included_minutes=60, overage_rate=D("120.00"),
                  covers=frozenset({"incident"}))
    works = [work("b", "2026-03-01", 45, "incident"), work("a", "2026-03-01", 45, "incident")]
    result = allocate(works, [small], [], [], POLICY, through=day("2026-03-31"))
    assert portions_of(result, "a") == [("included", 45, None, ZERO)]
    assert portions_of(result, "b") == [("included", 15, None, ZERO), ("billable", 30, "overage", D("60"))]


def test_included_capacity_is_not_prorated_for_a_mid_month_start() -> None:
    late = Terms("m", "managed", day("2026-10-15"), included_minutes=120, covers=frozenset({"incident"}))
    result = allocate([work("w", "2026-10-20", 120, "incident")], [late], [], [], POLICY,
                      through=day("2026-10-31"))
    assert portions_of(result, "w") == [("included", 120, None, ZERO)]


def test_earliest_managed_agreement_takes_covered_work() -> None:
    older = Terms("z-old", "managed", day("2025-01-01"), included_minutes=60, covers=frozenset({"incident"}))
    newer = Terms("a-new", "managed", day("2026-01-01"), included_minutes=60, covers=frozenset({"incident"}))
    result = allocate([work("w", "2026-02-02", 30, "incident")], [newer, older], [], [], POLICY,
                      through=day("2026-02-28"))
    assert result.portions_for("w")[0].agreement_key == "z-old"


def test_included_first_then_block_whatever_the_type_then_overage() -> None:
    block = PrepaidBlock("b1", day("2026-01-01"), 60, 0, D("150.00"))
    small = Terms("m", "managed", day("2026-01-01"), included_minutes=60, overage_rate=D("120.00"),
                  covers=frozenset({"incident"}))
    result = allocate([work("w", "2026-01-05", 150, "incident")], [small], [block], [], POLICY,
                      through=day("2026-01-31"))
    assert portions_of(result, "w") == [
        ("included", 60, None, ZERO), ("block", 60, "b1", ZERO), ("billable", 30, "overage", D("60")),
    ]


# --------------------------------------------------------------------------------- monitoring + block

WATCH = Terms("watch", "monitoring", day("2026-09-01"), monthly_fee=D("100.00"), block_minutes_per_month=120,
              covers=frozenset({"monitoring", "patching"}))
B1 = PrepaidBlock("b1", day("2026-09-01"), 20 * 60, 2 * 60, D("2400.00"))  # 20 hours + 2 free


def test_monitoring_deducts_two_hours_a_month_until_the_block_is_short() -> None:
    works = [
        work("w1", "2026-09-10", 300),  # block 1320 - 120 (Sep 1) - 300 = 900
        work("w2", "2026-10-05", 720),  # 900 - 120 (Oct 1) - 720 = 60
        work("w3", "2026-11-03", 60),  # Nov 1: 60 < 120, the fee is billed; the 60 go to work
        work("w4", "2026-11-04", 30),  # nothing left: the MSP's rate
    ]
    result = allocate(works, [WATCH], [B1], [], POLICY, through=day("2026-11-30"))

    assert result.monitoring == (
        MonitoringMonth("watch", "2026-09", day("2026-09-01"), True, (("b1", 120),)),
        MonitoringMonth("watch", "2026-10", day("2026-10-01"), True, (("b1", 120),)),
        MonitoringMonth("watch", "2026-11", day("2026-11-01"), False, ()),
    )
    assert portions_of(result, "w2") == [("block", 720, "b1", ZERO)]
    assert portions_of(result, "w3") == [("block", 60, "b1", ZERO)]
    assert portions_of(result, "w4") == [("billable", 30, "hourly", D("75"))]
    assert result.block_balances == {"b1": 0}
    assert result.block_balance_on("b1", day("2026-10-01")) == 780
    assert result.block_balance_on("b1", day("2026-10-31")) == 60
    # one point per day that moved, at the end of the day
    assert result.balance_series() == [
        (day("2026-09-01"), 1200), (day("2026-09-10"), 900), (day("2026-10-01"), 780),
        (day("2026-10-05"), 60), (day("2026-11-03"), 0),
    ]
    assert result.block_usage() == [
        (day("2026-09-01"), 120), (day("2026-09-10"), 300), (day("2026-10-01"), 120),
        (day("2026-10-05"), 720), (day("2026-11-03"), 60),
    ]


def test_monitoring_deduction_comes_before_that_days_work_and_spans_blocks() -> None:
    old = PrepaidBlock("old", day("2026-01-01"), 60, 0, D("150.00"))
    new = PrepaidBlock("new", day("2026-02-01"), 600, 0, D("1500.00"))
    watch = Terms("watch", "monitoring", day("2026-02-01"), monthly_fee=D("100.00"), block_minutes_per_month=120)
    result = allocate([work("w", "2026-02-01", 60)], [watch], [new, old], [], POLICY, through=day("2026-02-28"))
    assert result.monitoring[0].draws == (("old", 60), ("new", 60))
    assert portions_of(result, "w") == [("block", 60, "new", ZERO)]
    assert result.block_balances == {"old": 0, "new": 480}


def test_monitoring_months_start_on_the_first_within_the_agreement() -> None:
    mid = Terms("watch", "monitoring", day("2026-09-15"), end=day("2026-11-15"), monthly_fee=D("100.00"),
                block_minutes_per_month=120)
    block = PrepaidBlock("b", day("2026-01-01"), 6000, 0, D("1.00"))
    result = allocate([], [mid], [block], [], POLICY, through=day("2026-12-31"))
    assert [mm.month for mm in result.monitoring] == ["2026-10", "2026-11"]
    imported = Terms("watch", "monitoring", day("2026-01-01"), monthly_fee=D("100.00"),
                     block_minutes_per_month=120, billed_through=day("2026-08-31"))
    result = allocate([], [imported], [block], [], POLICY, through=day("2026-10-01"))
    assert [mm.month for mm in result.monitoring] == ["2026-09", "2026-10"]


# ------------------------------------------------------------------------------------- blocks, expiry


def test_blocks_are_used_oldest_first_and_expire_the_day_after() -> None:
    old = PrepaidBlock("old", day("2026-01-01"), 60, 0, D("150.00"))
    new = PrepaidBlock("new", day("2026-02-01"), 600, 0, D("1500.00"), expires=day("2026-03-31"))
    works = [work("w1", "2026-02-05", 90), work("w2", "2026-03-31", 60), work("w3", "2026-04-01", 15)]
    result = allocate(works, [], [new, old], [], POLICY, through=day("2026-04-30"))
    assert portions_of(result, "w1") == [("block", 60, "old", ZERO), ("block", 30, "new", ZERO)]
    assert portions_of(result, "w2") == [("block", 60, "new", ZERO)]
    assert portions_of(result, "w3") == [("billable", 15, "hourly", D("37.5"))]
    assert result.expiries == (Expiry("new", day("2026-04-01"), 510),)
    assert result.block_balances == {"old": 0, "new": 0}
    assert result.block_balance_on("new", day("2026-03-31")) == 510

    before = allocate(works[:2], [], [new, old], [], POLICY, through=day("2026-03-31"))
    assert before.expiries == ()
    assert before.block_balances == {"old": 0, "new": 510}


def test_a_purchase_on_the_day_of_the_work_pays_it() -> None:
    block = PrepaidBlock("b", day("2026-05-05"), 120, 0, D("300.00"))
    result = allocate([work("w", "2026-05-05", 100)], [], [block], [], POLICY, through=day("2026-05-31"))
    assert portions_of(result, "w") == [("block", 105, "b", ZERO)]
    assert result.block_balances == {"b": 15}


def test_things_after_through_are_left_out() -> None:
    block = PrepaidBlock("b", day("2026-06-01"), 120, 0, D("300.00"))
    result = allocate([work("w", "2026-06-02", 30)], [], [block], [Deposit("d", day("2026-06-01"), D("5"))],
                      POLICY, through=day("2026-05-31"))
    assert result.portions == () and result.block_balances == {} and result.retainer_balance == ZERO


# ----------------------------------------------------------------------------------------- retainer

RETAINER = Terms("ret", "retainer", day("2026-01-01"), hourly_rate=D("100.00"))


def test_retainer_goes_to_zero_and_the_shortfall_is_billed_at_its_rate() -> None:
    deposits = [Deposit("d1", day("2026-01-01"), D("500.00")), Deposit("d2", day("2026-01-15"), D("100.00"))]
    works = [
        work("w1", "2026-01-05", 120),  # 200.00 of 500.00
        work("w2", "2026-01-10", 200),  # 210 min = 350.00; 300.00 left: 180 min paid, 30 min short
        work("w3", "2026-01-12", 10),  # 15 min = 25.00; nothing left
        work("w4", "2026-01-15", 45),  # the deposit that day comes first: 75.00 paid, 25.00 left
    ]
    result = allocate(works, [RETAINER], [], deposits, POLICY, through=day("2026-01-31"))
    assert portions_of(result, "w1") == [("retainer", 120, None, D("200.00"))]
    assert portions_of(result, "w2") == [("retainer", 180, None, D("300.00")),
                                         ("billable", 30, "retainer", D("50.00"))]
    assert portions_of(result, "w3") == [("billable", 15, "retainer", D("25.00"))]
    assert portions_of(result, "w4") == [("retainer", 45, None, D("75.00"))]
    assert result.retainer_balance == D("25.00")
    assert result.retainer_balance_on(day("2026-01-12")) == ZERO

    [line] = usage_lines(result.portions)
    assert (line.kind, line.minutes, line.unit_price, line.amount) == ("retainer", 45, D("100.00"), D("75.00"))


def test_retainer_minutes_follow_the_money_down_to_the_minute() -> None:
    terms = Terms("ret", "retainer", day("2026-01-01"), hourly_rate=D("95.00"))
    result = allocate([work("w", "2026-01-02", 50)], [terms], [], [Deposit("d", day("2026-01-01"), D("10.00"))],
                      POLICY, through=day("2026-01-31"))
    # 60 min = 95.00; 10.00 paid covers floor(60 × 10 / 95) = 6 minutes; 85.00 billed for 54 minutes
    assert portions_of(result, "w") == [("retainer", 6, None, D("10.00")), ("billable", 54, "retainer", D("85.00"))]


def test_retainer_money_without_an_active_retainer_agreement_is_not_used() -> None:
    ended = Terms("ret", "retainer", day("2025-01-01"), end=day("2025-12-31"), hourly_rate=D("100.00"))
    result = allocate([work("w", "2026-01-02", 60)], [ended], [], [Deposit("d", day("2025-01-01"), D("500"))],
                      POLICY, through=day("2026-01-31"))
    assert portions_of(result, "w") == [("billable", 60, "hourly", D("150.00"))]  # the MSP's rate
    assert result.retainer_balance == D("500")


# --------------------------------------------------------------------------- hourly: cbs and adhoc


def test_call_before_service_work_is_billed_at_its_hourly_rate() -> None:
    cbs = Terms("cbs", "call_before_service", day("2026-01-01"), monthly_fee=D("150.00"),
                hourly_rate=D("140.00"), covers=frozenset({"monitoring"}))
    result = allocate([work("w", "2026-10-07", 100, "maintenance")], [cbs], [], [], POLICY,
                      through=day("2026-10-31"))
    [line] = usage_lines(result.portions)
    assert (line.kind, line.quantity, line.unit_price, line.amount) == ("hourly", D("1.75"), D("140.00"),
                                                                         D("245.00"))
    assert line.agreement_key == "cbs"


def test_adhoc_work_is_billed_at_the_msp_rate() -> None:
    adhoc = Terms("adhoc", "adhoc", day("2026-01-01"))
    for agreements in ([adhoc], []):
        result = allocate([work("w", "2026-10-07", 50)], agreements, [], [], POLICY, through=day("2026-10-31"))
        [line] = usage_lines(result.portions)
        assert (line.kind, line.minutes, line.amount, line.agreement_key) == ("hourly", 60, D("150.00"), None)
    priced = Terms("adhoc", "adhoc", day("2026-01-01"), hourly_rate=D("175.00"))
    result = allocate([work("w", "2026-10-07", 50)], [priced], [], [], POLICY, through=day("2026-10-31"))
    assert usage_lines(result.portions)[0].amount == D("175.00")


# ------------------------------------------------------------------------------------------- frozen


def test_a_back_dated_entry_cannot_take_block_minutes_an_invoice_counted() -> None:
    block = PrepaidBlock("b", day("2026-09-01"), 120, 0, D("300.00"))
    invoiced = allocate([work("w1", "2026-09-10", 120)], [], [block], [], POLICY, through=day("2026-09-30"))
    frozen = {"w1": invoiced.portions_for("w1")}
    works = [work("w0", "2026-09-05", 60), work("w1", "2026-09-10", 120)]

    result = allocate(works, [], [block], [], POLICY, through=day("2026-10-31"), frozen=frozen)
    assert portions_of(result, "w1") == [("block", 120, "b", ZERO)]
    assert portions_of(result, "w0") == [("billable", 60, "hourly", D("150"))]
    assert result.block_balances == {"b": 0}

    unfrozen = allocate(works, [], [block], [], POLICY, through=day("2026-10-31"))
    assert portions_of(unfrozen, "w0") == [("block", 60, "b", ZERO)]  # what it would have done


def test_frozen_retainer_money_and_included_hours_stay_reserved() -> None:
    managed = Terms("m", "managed", day("2026-01-01"), included_minutes=60, overage_rate=D("120.00"),
                    covers=frozenset({"incident"}))
    frozen_included = {"late": (Portion("late", day("2026-01-20"), "included", 60, agreement_key="m"),)}
    result = allocate([work("early", "2026-01-05", 30, "incident")], [managed], [], [], POLICY,
                      through=day("2026-01-31"), frozen=frozen_included)
    assert portions_of(result, "early") == [("billable", 30, "overage", D("60"))]
    assert portions_of(result, "late") == [("included", 60, None, ZERO)]

    deposit = Deposit("d", day("2026-01-01"), D("100.00"))
    frozen_money = {"late": (Portion("late", day("2026-01-20"), "retainer", 60, agreement_key="ret",
                                     rate=D("100.00"), amount=D("100.00")),)}
    result = allocate([work("early", "2026-01-05", 30)], [RETAINER], [], [deposit], POLICY,
                      through=day("2026-01-31"), frozen=frozen_money)
    assert portions_of(result, "early") == [("billable", 30, "retainer", D("50.00"))]
    assert result.retainer_balance == ZERO


def test_a_frozen_monitoring_month_is_kept_and_reserved() -> None:
    block = PrepaidBlock("b", day("2026-09-01"), 180, 0, D("450.00"))
    october = MonitoringMonth("watch", "2026-10", day("2026-10-01"), True, (("b", 120),))
    result = allocate([work("w", "2026-09-20", 120)], [WATCH], [block], [], POLICY, through=day("2026-10-31"),
                      frozen_monitoring={("watch", "2026-10"): october})
    # September's deduction is decided afresh: only 60 are free of October's reservation
    assert result.monitoring == (MonitoringMonth("watch", "2026-09", day("2026-09-01"), False, ()), october)
    assert portions_of(result, "w") == [("block", 60, "b", ZERO), ("billable", 60, "hourly", D("150"))]
    assert result.block_balances == {"b": 0}


# ------------------------------------------------------------------------------- notices and revenue


def test_burn_rate_and_run_out() -> None:
    usages = [(day("2026-08-02"), 90), (day("2026-09-15"), 180), (day("2026-10-31"), 90)]
    rate = burn_rate(usages, day("2026-10-31"))  # 90 days: Aug 3 .. Oct 31, so Aug 2 is out
    assert rate == D(3)
    assert forecast_run_out(300, rate, day("2026-10-31")) == day("2027-02-08")  # 100 days
    assert forecast_run_out(301, rate, day("2026-10-31")) == day("2027-02-09")
    assert forecast_run_out(300, D(0), day("2026-10-31")) is None
    assert forecast_run_out(0, rate, day("2026-10-31")) == day("2026-10-31")


def test_one_low_notice_per_crossing_and_one_at_zero() -> None:
    series = [(day(f"2026-01-{n:02d}"), balance) for n, balance in enumerate(
        [1200, 600, 180, 60, 0, 1200, 100, 0, 0], start=1)]
    assert threshold_crossings(series, 180) == [
        (day("2026-01-03"), "low"), (day("2026-01-05"), "zero"),
        (day("2026-01-07"), "low"), (day("2026-01-08"), "zero"),
    ]
    assert threshold_crossings([(day("2026-01-01"), 1200), (day("2026-01-02"), 0)], 180) == [
        (day("2026-01-02"), "low"), (day("2026-01-02"), "zero")]
    # a small purchase is not a fall; using it is
    assert threshold_crossings([(day("2026-01-01"), 120)], 180) == []
    assert threshold_crossings([(day("2026-01-01"), 120), (day("2026-01-02"), 60)], 180) == [
        (day("2026-01-02"), "low")]


def test_revenue_of_portions() -> None:
    blocks = {"b1": B1}
    assert round_cents(revenue_of(Portion("w", day("2026-09-01"), "block", 330, block_key="b1"), blocks)) == \
        D("600.00")
    assert revenue_of(Portion("w", day("2026-09-01"), "included", 60, agreement_key="m"), blocks) == ZERO
    assert revenue_of(Portion("w", day("2026-09-01"), "billable", 60, rate=D("150"), line_kind="hourly",
                              amount=D("150")), blocks) == D("150")


# ------------------------------------------------------------------------------------------ properties

START = dt.date(2026, 1, 1)
WORK_TYPES = ("incident", "maintenance", "malware_cleanup", "training", "monitoring")
RATES = (D("95.00"), D("120.00"), D("125.00"), D("140.00"))
THROUGH = dt.date(2026, 8, 31)

dates = st.integers(0, 240).map(lambda n: START + dt.timedelta(days=n))
covered = st.frozensets(st.sampled_from(WORK_TYPES), min_size=2, max_size=5)
excluded = st.frozensets(st.sampled_from(WORK_TYPES), max_size=1)


@st.composite
def agreements(draw: st.DrawFn, index: int) -> Terms:
    kind = draw(st.sampled_from(("managed", "monitoring", "call_before_service", "retainer", "adhoc")))
    start = draw(st.integers(0, 120).map(lambda n: START + dt.timedelta(days=n)))
    end = draw(st.none() | st.none() | st.integers(0, 200).map(lambda n: start + dt.timedelta(days=n)))
    return Terms(
        f"a{index}", kind, start, end,
        monthly_fee=draw(st.sampled_from((None, D("100.00"), D("1200.00")))),
        included_minutes=draw(st.sampled_from((None, 0, 60, 600))),
        overage_rate=draw(st.none() | st.sampled_from(RATES)),
        hourly_rate=draw(st.none() | st.sampled_from(RATES)),
        block_minutes_per_month=draw(st.sampled_from((None, 60, 120))),
        covers=draw(covered), excludes=draw(excluded),
    )


@st.composite
def blocks(draw: st.DrawFn, index: int) -> PrepaidBlock:
    purchased = draw(dates)
    expires = draw(st.none() | st.integers(0, 120).map(lambda n: purchased + dt.timedelta(days=n)))
    return PrepaidBlock(f"b{index}", purchased, draw(st.integers(1, 40)) * 30, draw(st.sampled_from((0, 120))),
                        D(draw(st.integers(1, 5000))), expires)


World = tuple[list[Work], list[Terms], list[PrepaidBlock], list[Deposit]]


@st.composite
def worlds(draw: st.DrawFn, retainer: bool = False) -> World:
    """A client's world; with `retainer`, one retainer agreement from the start and deposits to draw on."""
    n_works = draw(st.integers(0, 14))
    works = [Work(f"w{i:02d}", draw(dates), draw(st.integers(0, 300)), draw(st.sampled_from(WORK_TYPES)))
             for i in range(n_works)]
    terms = [draw(agreements(i)) for i in range(draw(st.integers(0, 3)))]
    prepaid = [draw(blocks(i)) for i in range(draw(st.integers(0, 3)))]
    early = st.integers(0, 150).map(lambda n: START + dt.timedelta(days=n))
    deposits = [Deposit(f"d{i}", draw(early), D(draw(st.integers(0, 60000))) / 100)
                for i in range(draw(st.integers(1 if retainer else 0, 3)))]
    if retainer:
        terms.append(Terms("ret", "retainer", START, hourly_rate=draw(st.sampled_from(RATES))))
    return works, terms, prepaid, deposits


any_world = st.one_of(worlds(), worlds(retainer=True))


def _check_balances(result: Allocation, prepaid: list[PrepaidBlock], deposits: list[Deposit]) -> None:
    running: dict[str, int] = defaultdict(int)
    for move in result.block_moves:
        running[move.block_key] += move.minutes
        assert running[move.block_key] >= 0, move
    for block in prepaid:
        if block.purchased > THROUGH:
            continue
        drawn = sum(p.minutes for p in result.portions if p.layer == "block" and p.block_key == block.key)
        drawn += sum(m for mm in result.monitoring for key, m in mm.draws if key == block.key)
        expired = sum(e.minutes for e in result.expiries if e.block_key == block.key)
        assert result.block_balances[block.key] == block.total_minutes - drawn - expired >= 0
    money = ZERO
    for retainer_move in result.retainer_moves:
        money += retainer_move.amount
        assert money >= 0
    paid_in = sum((d.amount for d in deposits if d.date <= THROUGH), ZERO)
    drawn_money = sum((p.amount for p in result.portions if p.layer == "retainer"), ZERO)
    assert result.retainer_balance == paid_in - drawn_money >= 0


@settings(max_examples=200, deadline=None)
@given(any_world)
def test_every_rounded_minute_is_paid_by_exactly_one_layer(world: World) -> None:
    works, terms, prepaid, deposits = world
    result = allocate(works, terms, prepaid, deposits, POLICY, through=THROUGH)
    for w in works:
        portions = result.portions_for(w.key)
        expected = round_up(w.minutes, 15) if w.date <= THROUGH else 0
        assert sum(p.minutes for p in portions) == expected
        assert all(p.minutes >= 0 and p.amount >= 0 for p in portions)
        for p in portions:
            if p.layer in ("included", "block"):
                assert p.amount == ZERO
            if p.layer == "billable" and p.line_kind != "retainer":
                assert p.rate is not None and p.amount == p.rate * p.minutes / 60
    _check_balances(result, prepaid, deposits)


@settings(max_examples=150, deadline=None)
@given(any_world, st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_input_order(world: World, rnd: random.Random) -> None:
    works, terms, prepaid, deposits = world
    expected = allocate(works, terms, prepaid, deposits, POLICY, through=THROUGH)
    for items in (works, terms, prepaid, deposits):
        rnd.shuffle(items)
    assert allocate(works, terms, prepaid, deposits, POLICY, through=THROUGH) == expected


@settings(max_examples=150, deadline=None)
@given(any_world)
def test_retainer_shortfall_plus_paid_is_the_entry_value(world: World) -> None:
    works, terms, prepaid, deposits = world
    result = allocate(works, terms, prepaid, deposits, POLICY, through=THROUGH)
    for key, portions in result.portions_by_work().items():
        money = [p for p in portions if p.layer == "retainer" or p.line_kind == "retainer"]
        if money:
            rate = money[0].rate
            assert rate is not None
            minutes = sum(p.minutes for p in money)
            assert sum((p.amount for p in money), ZERO) == round_cents(rate * minutes / 60), key


@settings(max_examples=150, deadline=None)
@given(any_world, dates, st.lists(st.tuples(dates, st.integers(1, 200)), max_size=4))
def test_freezing_what_was_invoiced_changes_nothing_and_protects_it(
    world: World, cut: dt.date, late: list[tuple[dt.date, int]]
) -> None:
    works, terms, prepaid, deposits = world
    first = allocate(works, terms, prepaid, deposits, POLICY, through=THROUGH)
    frozen = {k: ps for k, ps in first.portions_by_work().items() if ps[0].date <= cut}
    frozen_months = {(mm.agreement_key, mm.month): mm for mm in first.monitoring if mm.date <= cut}

    again = allocate(works, terms, prepaid, deposits, POLICY, through=THROUGH, frozen=frozen,
                     frozen_monitoring=frozen_months)
    assert again == first  # a rerun changes nothing

    # back-dated entries arrive: what was invoiced stays, and no balance goes below zero
    more = works + [Work(f"late{i}", d, m, "incident") for i, (d, m) in enumerate(late)]
    later = allocate(more, terms, prepaid, deposits, POLICY, through=THROUGH, frozen=frozen,
                     frozen_monitoring=frozen_months)
    for key, portions in frozen.items():
        assert later.portions_for(key) == portions
    assert all(mm in later.monitoring for mm in frozen_months.values())
    for w in more:
        if w.date <= THROUGH:
            assert sum(p.minutes for p in later.portions_for(w.key)) == round_up(w.minutes, 15)
    _check_balances(later, prepaid, deposits)
    for agreement in terms:
        if agreement.kind == "managed":
            used: dict[str, int] = defaultdict(int)
            for p in later.portions:
                if p.layer == "included" and p.agreement_key == agreement.key:
                    used[month_of(p.date)] += p.minutes
            assert all(m <= (agreement.included_minutes or 0) for m in used.values())


def test_terms_end_on_their_last_day_and_renew_or_end():
    from tenure.agreements.rules import current_term_end, ends_by_term, term_end, term_notice_due

    start = dt.date(2026, 3, 15)
    assert term_end(start, 12) == dt.date(2027, 3, 14) and term_end(start, 12, 2) == dt.date(2028, 3, 14)
    assert ends_by_term(start, None, 12, "ends") == dt.date(2027, 3, 14)
    assert ends_by_term(start, dt.date(2026, 9, 30), 12, "ends") == dt.date(2026, 9, 30)  # ended early: stays
    assert ends_by_term(start, None, 12, "auto") is None
    yearly = Terms("y", "managed", start, term_months=12, renewal="auto")
    assert current_term_end(yearly, dt.date(2027, 3, 14)) == dt.date(2027, 3, 14)
    assert current_term_end(yearly, dt.date(2027, 3, 15)) == dt.date(2028, 3, 14)  # renewed
    ending = Terms("y", "managed", start, dt.date(2027, 3, 14), term_months=12, renewal="ends")
    assert current_term_end(ending, dt.date(2027, 3, 15)) is None  # ended with its term
    assert term_notice_due(yearly, dt.date(2027, 1, 12), 60) is None  # 61 days before
    assert term_notice_due(yearly, dt.date(2027, 1, 13), 60) == dt.date(2027, 3, 14)

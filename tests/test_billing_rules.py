"""Invoice lines (DOMAIN.md "Billing"): worked examples and properties."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.agreements.rules import LineKind, MonitoringMonth, Portion, PrepaidBlock, Terms, first_of_next_month
from tenure.billing.rules import (
    Line,
    days_in_month,
    due_date,
    fee_lines,
    hours,
    net_billed,
    prorate,
    settlement_lines,
    usage_lines,
)
from tenure.money import ZERO

D = Decimal
MANAGED = Terms("acme-managed", "managed", dt.date(2026, 1, 1), monthly_fee=D("1200.00"), included_minutes=600,
                overage_rate=D("120.00"), hourly_rate=D("120.00"))


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def summary(lines: list[Line]) -> list[tuple[str, str, str, Decimal]]:
    return [(ln.kind, str(ln.service_from), str(ln.service_to), ln.amount) for ln in lines]


def bill_periods(agreement: Terms, periods: list[dt.date], earlier: list[Line] | None = None,
                 monitoring: dict[str, MonitoringMonth] | None = None) -> list[list[Line]]:
    """Run the fee rule period after period, each run seeing what the runs before it billed."""
    invoices: list[list[Line]] = []
    history = list(earlier or [])
    for period in periods:
        lines = fee_lines(agreement, period, net_billed(history, agreement.key), monitoring)
        invoices.append(lines)
        history += lines
    return invoices


# ---------------------------------------------------------------------------------------- small rules


def test_prorate_by_days_half_up() -> None:
    assert prorate(D("1200.00"), 17, 31) == D("658.06")  # 658.0645…
    assert prorate(D("1200.00"), 16, 31) == D("619.35")  # 619.3548…
    assert prorate(D("100.00"), 1, 8) == D("12.50")
    assert prorate(D("0.05"), 1, 2) == D("0.03")  # 0.025 rounds half-up
    assert prorate(D("1200.00"), 30, 30) == D("1200.00")


def test_due_date_is_net_terms() -> None:
    assert due_date(day("2026-11-01"), 10) == day("2026-11-11")
    assert due_date(day("2026-12-25"), 30) == day("2027-01-24")


@pytest.mark.parametrize(("minutes", "expected"), [
    (60, "1.00"), (105, "1.75"), (18, "0.30"), (20, "0.3333"), (7, "0.1167"), (0, "0.00"),
])
def test_hours_are_shown_exact_where_they_can_be(minutes: int, expected: str) -> None:
    assert str(hours(minutes)) == expected


# ------------------------------------------------------------------------------------------ fee lines


def test_mid_month_start_is_prorated_on_its_own_month() -> None:
    terms = Terms("new", "managed", day("2026-10-15"), monthly_fee=D("1200.00"))
    [line] = fee_lines(terms, day("2026-10-01"), [])
    assert (line.kind, line.service_from, line.service_to) == ("fee", day("2026-10-15"), day("2026-10-31"))
    assert (line.quantity, line.unit_price, line.amount) == (D(1), D("658.06"), D("658.06"))  # 1200 × 17 / 31
    assert "17 of 31 days" in line.description


def test_agreement_signed_after_the_run_gets_a_catch_up_line() -> None:
    terms = Terms("new", "managed", day("2026-10-15"), monthly_fee=D("1200.00"))
    lines = fee_lines(terms, day("2026-11-01"), [])
    assert summary(lines) == [
        ("catch_up", "2026-10-15", "2026-10-31", D("658.06")),
        ("fee", "2026-11-01", "2026-11-30", D("1200.00")),
    ]
    assert lines[1].description == "new: November 2026"


def test_billed_through_from_a_former_system() -> None:
    terms = Terms("old", "managed", day("2026-01-01"), monthly_fee=D("1200.00"), billed_through=day("2026-08-31"))
    assert summary(fee_lines(terms, day("2026-10-01"), [])) == [
        ("catch_up", "2026-09-01", "2026-09-30", D("1200.00")),
        ("fee", "2026-10-01", "2026-10-31", D("1200.00")),
    ]
    mid = Terms("old", "managed", day("2026-01-01"), monthly_fee=D("1200.00"), billed_through=day("2026-09-10"))
    assert summary(fee_lines(mid, day("2026-09-01"), [])) == [("fee", "2026-09-11", "2026-09-30", D("800.00"))]


def test_end_date_in_the_invoice_month_prorates_the_last_month() -> None:
    terms = Terms("m", "managed", day("2026-01-01"), end=day("2026-10-20"), monthly_fee=D("1200.00"))
    billed = [(day("2026-01-01"), day("2026-09-30"))]
    assert summary(fee_lines(terms, day("2026-10-01"), billed)) == [
        ("fee", "2026-10-01", "2026-10-20", D("774.19"))]  # 1200 × 20 / 31 = 774.1935…
    assert fee_lines(terms, day("2026-11-01"), [(day("2026-01-01"), day("2026-10-20"))]) == []


def test_a_rerun_bills_nothing_twice() -> None:
    first, second = bill_periods(MANAGED, [day("2026-10-01"), day("2026-10-01")])
    assert summary(first) == [("catch_up", f"2026-{m:02d}-01", str(dt.date(2026, m, days_in_month(
        dt.date(2026, m, 1)))), D("1200.00")) for m in range(1, 10)] + [("fee", "2026-10-01", "2026-10-31",
                                                                        D("1200.00"))]
    assert second == []


def test_end_date_set_after_billing_is_credited_next_time() -> None:
    october, november, december = bill_periods(MANAGED, [day("2026-10-01"), day("2026-11-01"),
                                                         day("2026-12-01")])
    history = october + november + december
    ended = Terms(**{**{f: getattr(MANAGED, f) for f in MANAGED.__slots__}, "end": day("2026-11-20")})
    january = fee_lines(ended, day("2027-01-01"), net_billed(history, MANAGED.key))
    assert summary(january) == [
        ("credit", "2026-11-21", "2026-11-30", D("-400.00")),  # 1200 × 10 / 30
        ("credit", "2026-12-01", "2026-12-31", D("-1200.00")),
    ]
    assert "credit for 2026-11-21 to 2026-11-30" in january[0].description
    # the credit is counted as given back: the next run has nothing to add or take away
    assert fee_lines(ended, day("2027-02-01"), net_billed(history + january, MANAGED.key)) == []


def test_end_date_set_mid_month_after_that_month_was_billed() -> None:
    [december] = bill_periods(MANAGED, [day("2026-12-01")], earlier=[
        Line("fee", "", D(1), D("1200.00"), D("1200.00"), MANAGED.key, day("2026-01-01"), day("2026-11-30"))])
    assert summary(december) == [("fee", "2026-12-01", "2026-12-31", D("1200.00"))]
    ended = Terms("acme-managed", "managed", day("2026-01-01"), end=day("2026-12-15"), monthly_fee=D("1200.00"))
    billed = [(day("2026-01-01"), day("2026-12-31"))]
    assert summary(fee_lines(ended, day("2027-01-01"), billed)) == [
        ("credit", "2026-12-16", "2026-12-31", D("-619.35"))]  # 1200 × 16 / 31


@pytest.mark.parametrize("kind", ["retainer", "adhoc"])
def test_kinds_without_a_fee_make_no_fee_lines(kind: str) -> None:
    assert fee_lines(Terms("x", kind, day("2026-01-01"), hourly_rate=D("100.00")), day("2026-10-01"), []) == []
    assert fee_lines(Terms("x", "managed", day("2026-01-01"), monthly_fee=ZERO), day("2026-10-01"), []) == []


def test_monitoring_month_paid_from_a_block_is_a_zero_line() -> None:
    watch = Terms("watch", "monitoring", day("2026-09-01"), monthly_fee=D("100.00"), block_minutes_per_month=120)
    months = {
        "2026-09": MonitoringMonth("watch", "2026-09", day("2026-09-01"), True, (("b1", 120),)),
        "2026-10": MonitoringMonth("watch", "2026-10", day("2026-10-01"), True, (("b1", 60), ("b2", 60))),
        "2026-11": MonitoringMonth("watch", "2026-11", day("2026-11-01"), False, ()),
    }
    september, october, november = bill_periods(watch, [day("2026-09-01"), day("2026-10-01"),
                                                        day("2026-11-01")], monitoring=months)
    [line] = september
    assert (line.kind, line.amount, line.unit_price, line.quantity, line.minutes) == (
        "monitoring_block", ZERO, ZERO, D("2.00"), 120)
    assert line.description == "watch: September 2026: 2 hours deducted from block b1 instead of the fee"
    assert "2 hours deducted from blocks b1, b2 instead of the fee" in october[0].description
    assert summary(november) == [("fee", "2026-11-01", "2026-11-30", D("100.00"))]  # the block was short


def test_monitoring_mid_month_start_pays_its_first_part_month_by_fee() -> None:
    watch = Terms("watch", "monitoring", day("2026-09-15"), monthly_fee=D("100.00"), block_minutes_per_month=120)
    assert summary(fee_lines(watch, day("2026-09-01"), [], {})) == [
        ("fee", "2026-09-15", "2026-09-30", D("53.33"))]  # 100 × 16 / 30


# ---------------------------------------------------------------------------------------- usage lines


def billable(key: str, when: str, minutes: int, rate: str, kind: LineKind = "hourly",
             agreement: str | None = "a") -> Portion:
    r = D(rate)
    amount = r * minutes / 60
    return Portion(key, day(when), "billable", minutes, agreement_key=agreement, rate=r,
                   line_kind=kind, amount=amount)


def test_usage_is_summed_exactly_and_rounded_once() -> None:
    portions = [billable(f"w{i}", f"2026-10-0{i}", 20, "100.00") for i in range(1, 4)]
    [line] = usage_lines(portions)
    assert (line.quantity, line.amount, line.minutes) == (D("1.00"), D("100.00"), 60)  # not 3 × 33.33
    assert (line.service_from, line.service_to) == (day("2026-10-01"), day("2026-10-03"))
    [odd] = usage_lines([billable("w", "2026-10-01", 7, "125.00")])
    assert (odd.quantity, odd.amount) == (D("0.1167"), D("14.58"))  # 14.5833…


def test_usage_lines_group_by_kind_and_rate() -> None:
    portions = [
        billable("w1", "2026-10-01", 60, "150.00", agreement=None),
        billable("w2", "2026-10-02", 30, "120.00", kind="overage"),
        billable("w3", "2026-10-03", 45, "130.00", agreement="b"),
        billable("w4", "2026-10-04", 15, "150.00", agreement="c"),
        Portion("w5", day("2026-10-05"), "billable", 30, agreement_key="r", rate=D("100.00"), line_kind="retainer",
                amount=D("50.00")),
        Portion("w6", day("2026-10-06"), "block", 30, block_key="b1"),
        Portion("w7", day("2026-10-06"), "retainer", 30, agreement_key="r", rate=D("100.00"), amount=D("50.00")),
    ]
    lines = usage_lines(portions)
    assert [(ln.kind, ln.unit_price, ln.minutes, ln.amount, ln.agreement_key) for ln in lines] == [
        ("overage", D("120.00"), 30, D("60.00"), "a"),
        ("hourly", D("130.00"), 45, D("97.50"), "b"),
        ("hourly", D("150.00"), 75, D("187.50"), None),  # two agreements' work: no single agreement
        ("retainer", D("100.00"), 30, D("50.00"), "r"),
    ]
    assert lines[0].description == "Overage: 0.5 hours at 120.00/hour"


# ----------------------------------------------------------------------------------------- settlement

BLOCK = PrepaidBlock("acme-b1", day("2026-09-01"), 20 * 60, 2 * 60, D("2400.00"))  # 22 hours for 2400


def test_unused_block_hours_are_refunded_at_the_price_per_hour_with_the_bonus() -> None:
    other = PrepaidBlock("acme-b0", day("2026-01-01"), 600, 0, D("1500.00"))
    lines = settlement_lines({"acme-b1": 330, "acme-b0": 0}, [BLOCK, other], D("25.00"), "refund")
    assert [(ln.kind, ln.quantity, ln.unit_price, ln.amount, ln.minutes) for ln in lines] == [
        ("refund", D("5.50"), D("-109.09"), D("-600.00"), 330),  # 2400 × 330 / 1320, rounded once
        ("refund", D(1), D("-25.00"), D("-25.00"), None),
    ]
    [odd] = settlement_lines({"acme-b1": 100}, [BLOCK], ZERO, "refund")
    assert odd.amount == D("-181.82")  # 2400 × 100 / 1320 = 181.8181…


def test_unused_prepaid_time_can_be_forfeited() -> None:
    lines = settlement_lines({"acme-b1": 330}, [BLOCK], D("25.00"), "forfeit")
    assert [(ln.kind, ln.amount) for ln in lines] == [("forfeit", ZERO), ("forfeit", ZERO)]
    assert "5.5 hours unused of block acme-b1" in lines[0].description
    assert settlement_lines({}, [BLOCK], ZERO, "refund") == []


# ----------------------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**8).map(lambda c: D(c) / 100), st.integers(28, 31))
def test_a_whole_month_prorated_is_the_fee(fee: Decimal, days: int) -> None:
    assert prorate(fee, days, days) == fee


@st.composite
def fee_scenarios(draw: st.DrawFn) -> tuple[Terms, list[dt.date], dt.date | None, int]:
    start = dt.date(2025, 11, 1) + dt.timedelta(days=draw(st.integers(0, 400)))
    billed_through = draw(st.none() | st.integers(-40, 200).map(lambda n: start + dt.timedelta(days=n)))
    terms = Terms("a", draw(st.sampled_from(("managed", "monitoring", "call_before_service"))), start,
                  monthly_fee=D(draw(st.integers(1, 300000))) / 100, billed_through=billed_through)
    first_period = dt.date(2026, draw(st.integers(1, 12)), 1)
    periods = [first_period]
    for _ in range(draw(st.integers(0, 14))):
        periods.append(first_of_next_month(periods[-1]))
    end = draw(st.none() | st.integers(0, 500).map(lambda n: start + dt.timedelta(days=n)))
    end_set_after = draw(st.integers(0, len(periods)))  # the end date is known from this run on
    return terms, periods, end, end_set_after


@settings(max_examples=200, deadline=None)
@given(fee_scenarios())
def test_consecutive_runs_never_bill_a_day_twice(scenario: tuple[Terms, list[dt.date], dt.date | None, int]) -> None:
    terms, periods, end, end_set_after = scenario
    history: list[Line] = []
    for n, period in enumerate(periods):
        current = terms if n < end_set_after or end is None else Terms(
            terms.key, terms.kind, terms.start, end, monthly_fee=terms.monthly_fee,
            billed_through=terms.billed_through)
        history += fee_lines(current, period, net_billed(history, terms.key))
        days: Counter[dt.date] = Counter()
        for line in history:
            assert line.service_from is not None and line.service_to is not None
            assert line.service_from.replace(day=1) == line.service_to.replace(day=1)  # one month per line
            sign = -1 if line.kind == "credit" else 1
            assert line.amount <= 0 if line.kind == "credit" else line.amount >= 0
            d = line.service_from
            while d <= line.service_to:
                days[d] += sign
                d += dt.timedelta(days=1)
        assert set(days.values()) <= {0, 1}  # never twice, never credited more than billed
        # everything due so far is billed, and nothing else
        first = terms.start if terms.billed_through is None else max(terms.start, terms.billed_through
                                                                      + dt.timedelta(days=1))
        last = first_of_next_month(period) - dt.timedelta(days=1)
        if current.end is not None:
            last = min(last, current.end)
        expected = {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}
        assert {d for d, count in days.items() if count == 1} == expected
        # a rerun of the same period changes nothing
        assert fee_lines(current, period, net_billed(history, terms.key)) == []


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 300000).map(lambda c: D(c) / 100), st.integers(1, 12))
def test_a_month_billed_in_parts_is_within_a_cent_per_part_of_the_fee(fee: Decimal, month: int) -> None:
    terms = Terms("a", "managed", dt.date(2026, month, 11), monthly_fee=fee)
    [part] = fee_lines(terms, dt.date(2026, month, 1), [])
    rest = Terms("a", "managed", dt.date(2026, month, 1), monthly_fee=fee)
    assert part.service_from is not None and part.service_to is not None
    [other] = fee_lines(rest, dt.date(2026, month, 1), [(part.service_from, part.service_to)])
    assert abs(part.amount + other.amount - fee) <= D("0.01")


# --------------------------------------------------------------------------- corrections and intervals


def test_a_correction_bills_the_difference_per_kind_and_rate_rounded_once():
    from tenure.billing.rules import adjustment_lines

    rate = D("127.25")
    old = [Portion("t1", day("2026-10-05"), "billable", 15, rate=rate, line_kind="hourly", amount=rate * 15 / 60),
           Portion("t2", day("2026-10-06"), "billable", 30, rate=rate, line_kind="hourly", amount=rate * 30 / 60)]
    new = [Portion("t2", day("2026-10-06"), "billable", 60, rate=rate, line_kind="hourly", amount=rate * 60 / 60)]
    (line,) = adjustment_lines(old, new)  # t1 voided (−15), t2 from 30 to 60 minutes (+30): 15 minutes more
    # 127.25 × 15 / 60 = 31.8125 → 31.81, once for the line, not per entry
    assert (line.kind, line.minutes, line.amount, line.unit_price) == ("adjustment", 15, D("31.81"), rate)
    assert line.service_from == day("2026-10-05") and "t1, t2" in line.description
    assert adjustment_lines(old, old) == []  # corrected back to what was billed: nothing to say
    (credit,) = adjustment_lines(old, [])
    assert (credit.minutes, credit.amount, credit.quantity) == (-45, D("-95.44"), D("-0.75"))  # −95.4375


def test_a_quarterly_fee_is_billed_through_the_end_of_its_interval():
    quarterly = Terms("q", "managed", day("2026-02-10"), monthly_fee=D("300.00"), billing_interval_months=3)
    first = fee_lines(quarterly, day("2026-02-01"), [])
    # the interval of February to April, from the start month: 19 of February's 28 days, then March and April
    assert summary(first) == [("fee", "2026-02-10", "2026-02-28", D("203.57")),
                              ("fee", "2026-03-01", "2026-03-31", D("300.00")),
                              ("fee", "2026-04-01", "2026-04-30", D("300.00"))]  # fmt: skip
    billed = net_billed(first, "q")
    assert fee_lines(quarterly, day("2026-03-01"), billed) == []
    assert [ln.service_from for ln in fee_lines(quarterly, day("2026-05-01"), billed)] == [
        day("2026-05-01"), day("2026-06-01"), day("2026-07-01")
    ]

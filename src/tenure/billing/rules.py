"""Invoice lines: recurring fees in advance, usage in arrears, settlement at offboarding (DOMAIN.md "Billing").

Pure rules: values in, values out. Every amount is rounded half-up to the cent exactly once; a line's
`unit_price` is always whole cents (it is stored as Money), so where an exact unit price would not be,
the line shows quantity 1 at its amount, or a rounded unit price beside the exactly computed amount.
"""

from __future__ import annotations

import calendar
import datetime as dt
import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from tenure.agreements.rules import (
    MINUTES_PER_HOUR,
    MonitoringMonth,
    Portion,
    PrepaidBlock,
    Terms,
    interval_last_month,
    month_of,
)
from tenure.money import ZERO, round_cents

UnusedPrepaid = Literal["refund", "forfeit"]
DateRange = tuple[dt.date, dt.date]  # both days included

FEE_KINDS = ("fee", "catch_up", "monitoring_block")  # lines that bill service days
USAGE_ORDER = {"overage": 0, "hourly": 1, "retainer": 2}
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Line:
    kind: str  # fee|catch_up|credit|monitoring_block|overage|hourly|retainer|refund|forfeit
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    agreement_key: str | None = None
    service_from: dt.date | None = None
    service_to: dt.date | None = None
    minutes: int | None = None

    def __reduce__(self) -> tuple[type[Line], tuple[object, ...]]:
        # pickled as its fields, made again by __init__: a billing shard's process sends tens of thousands,
        # and a slotted dataclass's own state functions list its fields again for every one
        return (Line, (self.kind, self.description, self.quantity, self.unit_price, self.amount, self.agreement_key,
                       self.service_from, self.service_to, self.minutes))


# ----------------------------------------------------------------------------------------- small rules


def prorate(fee: Decimal, days: int, days_in_month: int) -> Decimal:
    """fee × days ÷ days in the month, half-up to the cent (a whole month is the fee itself)."""
    return round_cents(fee * days / days_in_month)


def due_date(invoice_date: dt.date, payment_terms_days: int) -> dt.date:
    return invoice_date + dt.timedelta(days=payment_terms_days)


def days_in_month(d: dt.date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def month_end(d: dt.date) -> dt.date:
    return d.replace(day=days_in_month(d))


def hours(minutes: int) -> Decimal:
    """Minutes as hours for showing (1.25, 0.30, 0.3333): exact when 4 places hold it, else rounded to 4.
    Amounts never come from this figure; they are computed from minutes."""
    four = (Decimal(minutes) / MINUTES_PER_HOUR).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    two = four.quantize(Decimal("0.01"))
    return two if two == four else four


def _hours_text(minutes: int) -> str:
    text = format(hours(minutes).normalize(), "f")
    return f"{text} hour" if text == "1" else f"{text} hours"


def _money_text(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


# ------------------------------------------------------------------------------------ day ranges


def _merge(ranges: Iterable[DateRange]) -> list[DateRange]:
    merged: list[DateRange] = []
    for start, end in sorted(r for r in ranges if r[0] <= r[1]):
        if merged and (merged[-1][1] == dt.date.max or start <= merged[-1][1] + dt.timedelta(days=1)):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(ranges: Iterable[DateRange], taken: Iterable[DateRange]) -> list[DateRange]:
    """The days of `ranges` that are in none of `taken`."""
    left = _merge(ranges)
    for t_start, t_end in _merge(taken):
        kept: list[DateRange] = []
        for start, end in left:
            if t_end < start or end < t_start:
                kept.append((start, end))
                continue
            if start < t_start:
                kept.append((start, t_start - dt.timedelta(days=1)))
            if t_end < end:
                kept.append((t_end + dt.timedelta(days=1), end))
        left = kept
    return left


def _by_month(ranges: Iterable[DateRange]) -> list[DateRange]:
    """Split ranges at month ends, so each piece lies within one calendar month."""
    pieces: list[DateRange] = []
    for start, end in ranges:
        while start <= end:
            piece_end = min(end, month_end(start))
            pieces.append((start, piece_end))
            start = piece_end + dt.timedelta(days=1)
    return pieces


def net_billed(lines: Iterable[Line], agreement_key: str) -> list[DateRange]:
    """The service days earlier invoices billed for an agreement: fee, catch-up and monitoring-block lines,
    less the days credit lines gave back. The `billed` argument of `fee_lines`."""
    billed, credited = _billed_and_credited(lines, agreement_key)
    return _subtract(billed, credited)


def over_credited(lines: Iterable[Line], agreement_key: str) -> list[DateRange]:
    """Days a credit line gave back that no invoice bills any more: the invoice that billed them was voided
    after the credit was given (an end date set later, then the invoice before it voided)."""
    billed, credited = _billed_and_credited(lines, agreement_key)
    return _subtract(credited, billed)


def _billed_and_credited(lines: Iterable[Line], agreement_key: str) -> tuple[list[DateRange], list[DateRange]]:
    billed: list[DateRange] = []
    credited: list[DateRange] = []
    for line in lines:
        if line.agreement_key != agreement_key or line.service_from is None or line.service_to is None:
            continue
        if line.kind in FEE_KINDS:
            billed.append((line.service_from, line.service_to))
        elif line.kind == "credit":
            credited.append((line.service_from, line.service_to))
    return billed, credited


def credits_billed_back(agreement: Terms, period_start: dt.date, over: Sequence[DateRange]) -> list[Line]:
    """A credit given for days no invoice bills any more is billed back, per month and prorated as it was
    given: the client was credited for a charge that was voided since. Billed as days (a fee-kind line), so
    the days are then neither billed nor credited, and a later run finds nothing more to do."""
    fee = agreement.monthly_fee
    if fee is None or fee <= 0:
        return []
    lines = []
    for start, end in _by_month(over):
        amount = _fee_for(fee, (start, end))
        text = f"{agreement.key}: {_service_text((start, end))}, credited on an invoice since voided, billed back"
        kind = "catch_up" if start < period_start.replace(day=1) else "fee"
        lines.append(Line(kind, text, ONE, amount, amount, agreement_key=agreement.key,
                          service_from=start, service_to=end))
    return lines


# ------------------------------------------------------------------------------------ recurring fees


def fee_lines(agreement: Terms, period_start: dt.date, billed: Sequence[DateRange],
              monitoring: Mapping[str, MonitoringMonth] | None = None) -> list[Line]:
    """Recurring fee lines of one agreement on the invoice dated `period_start` (the 1st of its month).

    Bills, in advance, every service day from the start (or the day after `billed_through`) to the end of
    the invoice's month or the end date that `billed` does not hold: whole months at the fee, part months
    prorated; months before the invoice's month are catch-up lines. Days billed before and now outside the
    agreement (an end date set later) are credited, per month, prorated the same way. A monitoring month
    paid from a block shows as a zero line instead of its fee.

    With a `billing_interval_months` of 3 or 12, "the end of the invoice's month" is the end of the last
    month of the interval that holds it (intervals counted from the start month): the interval's first
    invoice bills all of its months, and the others find them billed.
    """
    fee = agreement.monthly_fee
    if fee is None or fee <= 0:
        return []
    period_start = period_start.replace(day=1)
    first = agreement.start
    if agreement.billed_through is not None:
        first = max(first, agreement.billed_through + dt.timedelta(days=1))
    horizon = month_end(interval_last_month(agreement, period_start))
    last = horizon if agreement.end is None else min(horizon, agreement.end)
    months = monitoring or {}
    lines = [_charge_line(agreement, fee, piece, period_start, months.get(month_of(piece[0])))
             for piece in _by_month(_subtract([(first, last)], billed))]
    return lines + _credit_lines(agreement, fee, billed, months)


def _charge_line(agreement: Terms, fee: Decimal, piece: DateRange, period_start: dt.date,
                 month: MonitoringMonth | None) -> Line:
    start, end = piece
    if (agreement.kind == "monitoring" and month is not None and month.paid_from_block
            and month.agreement_key == agreement.key):
        return _monitoring_block_line(agreement, piece, month)
    kind = "catch_up" if start < period_start else "fee"
    amount = _fee_for(fee, piece)
    return Line(kind, f"{agreement.key}: {_service_text(piece)}", ONE, amount, amount,
                agreement_key=agreement.key, service_from=start, service_to=end)


def _monitoring_block_line(agreement: Terms, piece: DateRange, month: MonitoringMonth) -> Line:
    keys = ", ".join(key for key, _ in month.draws)
    noun = "block" if len(month.draws) == 1 else "blocks"
    text = (f"{agreement.key}: {_service_text(piece)}: {_hours_text(month.minutes)} deducted from "
            f"{noun} {keys} instead of the fee")
    return Line("monitoring_block", text, hours(month.minutes), ZERO, ZERO, agreement_key=agreement.key,
                service_from=piece[0], service_to=piece[1], minutes=month.minutes)


def _credit_lines(agreement: Terms, fee: Decimal, billed: Sequence[DateRange],
                  months: Mapping[str, MonitoringMonth]) -> list[Line]:
    # days billed earlier that the agreement no longer has: before its start or after an end set later
    inside = (agreement.start, agreement.end or dt.date.max)
    lines = []
    for piece in _by_month(_subtract(billed, [inside])):
        month = months.get(month_of(piece[0]))
        if month is not None and month.paid_from_block and month.agreement_key == agreement.key:
            continue  # a block paid that month, not money: there is nothing to give back
        amount = -_fee_for(fee, piece)
        lines.append(Line("credit", f"{agreement.key}: credit for {_service_text(piece)}", ONE, amount,
                          amount, agreement_key=agreement.key, service_from=piece[0], service_to=piece[1]))
    return lines


def _fee_for(fee: Decimal, piece: DateRange) -> Decimal:
    days = (piece[1] - piece[0]).days + 1
    return prorate(fee, days, days_in_month(piece[0]))


# the months by name, in English whatever the server's locale (`calendar.month_name` follows LC_TIME, and
# asks strftime on every lookup: a first run writes forty thousand fee lines)
MONTH_NAMES = ("", "January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")


def _service_text(piece: DateRange) -> str:
    start, end = piece
    total = days_in_month(start)
    days = (end - start).days + 1
    if days == total:
        return f"{MONTH_NAMES[start.month]} {start.year}"
    return f"{start.isoformat()} to {end.isoformat()} ({days} of {total} days)"


# ------------------------------------------------------------------------------------ usage in arrears


def usage_lines(portions: Iterable[Portion]) -> list[Line]:
    """Billable portions as lines, one per (line kind, rate): minutes × rate ÷ 60 summed exactly and rounded
    half-up once; a retainer shortfall is already money, so its amounts are summed."""
    groups: dict[tuple[str, Decimal], list[Portion]] = defaultdict(list)
    for p in portions:
        if p.layer == "billable" and p.line_kind is not None and p.rate is not None:
            groups[(p.line_kind, p.rate)].append(p)
    ordered = sorted(groups.items(), key=lambda g: (USAGE_ORDER.get(g[0][0], 9), g[0][0], g[0][1]))
    return [_usage_line(kind, rate, group) for (kind, rate), group in ordered]


# a Portion's fields by position, read in C: a first run's usage lines read a million portions
_DATE, _MINUTES, _AGREEMENT, _AMOUNT = (operator.itemgetter(i) for i in (1, 3, 5, 8))


def _usage_line(kind: str, rate: Decimal, group: list[Portion]) -> Line:
    minutes = sum(map(_MINUTES, group))
    if kind == "retainer":
        amount = round_cents(sum(map(_AMOUNT, group), ZERO))
    else:  # minutes × rate ÷ 60 of the exact sum (rate × Σ minutes is Σ rate × minutes): rounded once
        amount = round_cents(rate * minutes / MINUTES_PER_HOUR)
    agreements = set(map(_AGREEMENT, group))
    dates = list(map(_DATE, group))
    title = {"overage": "Overage", "hourly": "Hourly work",
             "retainer": "Work beyond the retainer balance"}.get(kind, kind)
    return Line(kind, f"{title}: {_hours_text(minutes)} at {_money_text(rate)}/hour", hours(minutes),
                rate, amount, agreement_key=agreements.pop() if len(agreements) == 1 else None,
                service_from=min(dates), service_to=max(dates), minutes=minutes)


# ---------------------------------------------------------------------------------- corrections, charges


def adjustment_lines(credited: Iterable[Portion], rebilled: Iterable[Portion]) -> list[Line]:
    """Corrections of work an earlier invoice billed (an entry edited, voided or moved to another client),
    never an edit of that invoice: per (line kind, rate), what is billable now (`rebilled`, the corrected
    entries' new portions) less what was billed (`credited`, the portions the invoice counted), as one line
    of kind `adjustment`, a charge when more is owed and a credit when less. Minutes are signed; the amount is
    the exact difference (minutes × rate ÷ 60, or the retainer shortfall's money) rounded half-up once. A
    kind and rate with nothing left to change makes no line."""
    minutes: dict[tuple[str, Decimal], int] = defaultdict(int)
    exact: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
    keys: dict[tuple[str, Decimal], set[str]] = defaultdict(set)
    days: dict[tuple[str, Decimal], set[dt.date]] = defaultdict(set)
    agreements: dict[tuple[str, Decimal], set[str | None]] = defaultdict(set)
    for factor, portions in ((-1, credited), (1, rebilled)):
        for p in portions:
            if p.layer != "billable" or p.line_kind is None or p.rate is None:
                continue
            group: tuple[str, Decimal] = (p.line_kind, p.rate)
            minutes[group] += factor * p.minutes
            exact[group] += factor * (p.amount if p.line_kind == "retainer" else p.rate * p.minutes)
            keys[group].add(p.work_key)
            days[group].add(p.date)
            agreements[group].add(p.agreement_key)
    lines = []
    for group in sorted(minutes, key=lambda g: (USAGE_ORDER.get(g[0], 9), g[0], g[1])):
        kind, rate = group
        amount = round_cents(exact[group] if kind == "retainer" else exact[group] / MINUTES_PER_HOUR)
        if minutes[group] == 0 and amount == 0:
            continue
        title = {"overage": "overage", "hourly": "hourly work", "retainer": "work beyond the retainer balance"}.get(
            kind, kind
        )
        shown = sorted(keys[group])
        entries = ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
        sign = "-" if minutes[group] < 0 else "+"
        owners = agreements[group]
        lines.append(
            Line(
                "adjustment",
                f"Adjustment to invoiced {title}: {sign}{_hours_text(abs(minutes[group]))} at "
                f"{_money_text(rate)}/hour (corrected time: {entries})",
                hours(minutes[group]) if minutes[group] >= 0 else -hours(-minutes[group]),
                rate,
                amount,
                agreement_key=owners.pop() if len(owners) == 1 else None,
                service_from=min(days[group]),
                service_to=max(days[group]),
                minutes=minutes[group],
            )
        )
    return lines


@dataclass(frozen=True, slots=True)
class Charge:
    """Parts, materials or a one-off charge: `amount` in all (`quantity` only describes it)."""

    key: str
    date: dt.date
    description: str
    amount: Decimal
    quantity: Decimal | None = None
    cost: Decimal | None = None


def charge_lines(due: Iterable[Charge], withdrawn: Iterable[Charge] = ()) -> list[Line]:
    """Charges billed in arrears, one line of kind `charge` each, in date order, at their amount (with a
    unit price when the quantity divides the amount to the cent, else quantity 1); and charges voided after
    an invoice billed them, each credited by an `adjustment` line."""
    lines = []
    for c in sorted(due, key=lambda c: (c.date, c.key)):
        quantity, unit = ONE, c.amount
        if c.quantity is not None and c.quantity > 0:
            per = c.amount / c.quantity
            if per == round_cents(per):
                quantity, unit = c.quantity, round_cents(per)
        lines.append(Line("charge", f"{c.description} ({c.date.isoformat()})", quantity, unit, c.amount,
                          service_from=c.date, service_to=c.date))
    for c in sorted(withdrawn, key=lambda c: (c.date, c.key)):
        lines.append(Line("adjustment", f"Credit: charge {c.key} withdrawn ({c.description}, {c.date.isoformat()})",
                          ONE, -c.amount, -c.amount, service_from=c.date, service_to=c.date))
    return lines


# ------------------------------------------------------------------------------------------ settlement


def settlement_lines(block_balances: Mapping[str, int], blocks: Iterable[PrepaidBlock],
                     retainer_balance: Decimal, policy: UnusedPrepaid) -> list[Line]:
    """The final invoice's settlement of unused prepaid time: refunded (negative lines, at the block's
    price ÷ (hours + bonus hours) per hour, rounded once) or forfeited (zero lines that say so)."""
    lines = []
    for block in sorted(blocks, key=lambda b: (b.purchased, b.key)):
        left = block_balances.get(block.key, 0)
        if left > 0:
            lines.append(_block_settlement(block, left, policy))
    if retainer_balance > 0:
        lines.append(_retainer_settlement(retainer_balance, policy))
    return lines


def _block_settlement(block: PrepaidBlock, minutes: int, policy: UnusedPrepaid) -> Line:
    what = f"{_hours_text(minutes)} unused of block {block.key}"
    if policy == "forfeit":
        return Line("forfeit", f"{what}, forfeited", hours(minutes), ZERO, ZERO, minutes=minutes)
    amount = -round_cents(block.value_of(minutes))
    unit_price = round_cents(block.price_per_hour)
    return Line("refund", f"Refund: {what} at {_money_text(unit_price)}/hour", hours(minutes), -unit_price,
                amount, minutes=minutes)


def _retainer_settlement(balance: Decimal, policy: UnusedPrepaid) -> Line:
    if policy == "forfeit":
        return Line("forfeit", f"Unused retainer balance {_money_text(balance)}, forfeited", ONE, ZERO, ZERO)
    amount = -round_cents(balance)
    return Line("refund", "Refund: unused retainer balance", ONE, amount, amount)


# ---------------------------------------------------------------------------- reminders and statements

DEFAULT_REMINDER_DAYS = (1, 7, 14)


def reminder_due(due: dt.date, today: dt.date, reminder_days: Sequence[int], last_sent: int | None) -> int | None:
    """The reminder to send today for an unpaid invoice due on `due`: the latest of `reminder_days` (days past
    due) reached by today and later than the last one sent; None when there is none. A worker that was down
    across several steps sends one reminder, the latest, not one per step it missed."""
    overdue = (today - due).days
    reached = [d for d in reminder_days if 0 < d <= overdue and (last_sent is None or d > last_sent)]
    return max(reached) if reached else None


@dataclass(frozen=True, slots=True)
class Billed:
    """An invoice as a statement of account sees it (drafts are not the client's yet: never one of these)."""

    number: str
    date: dt.date
    due_date: dt.date
    status: str  # issued | paid | void
    total: Decimal
    paid_on: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Account:
    open: tuple[Billed, ...]  # issued and unpaid, oldest first
    payments: tuple[Billed, ...]  # paid on a day from `since` to today, oldest first
    balance: Decimal  # what the client owes: the open invoices' totals
    overdue: Decimal  # the part of the balance past its due date


def account(invoices: Iterable[Billed], today: dt.date, since: dt.date) -> Account:
    """A client's statement of account on `today`: every open invoice, the payments since `since`, the
    balance. An invoice is paid whole, so a payment is its invoice's total; a void invoice is owed nothing."""
    everything = sorted(invoices, key=lambda b: (b.date, b.number))
    open_ = tuple(b for b in everything if b.status == "issued")
    payments = tuple(
        sorted(
            (b for b in everything if b.status == "paid" and b.paid_on is not None and since <= b.paid_on <= today),
            key=lambda b: (b.paid_on or b.date, b.number),
        )
    )
    balance = sum((b.total for b in open_), ZERO)
    overdue = sum((b.total for b in open_ if b.due_date < today), ZERO)
    return Account(open_, payments, balance, overdue)

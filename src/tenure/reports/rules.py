"""The owner's view (DOMAIN.md "The owner's view"): profitability by service month, and the fit replay.

Pure rules: values in, values out; no session, no clock, no I/O. Money is `Decimal`, durations integer
minutes. Nothing here prices work a second way: the coverage layers (`agreements.rules.allocate`) say how
every minute was or would be paid, `billing.rules.fee_lines` says what each service day of a fee costs, and
`agreements.rules.revenue_of` says what a paid minute earns.

**Revenue** of a client in a month is earned by service month, whatever the invoice date:

- the recurring fees for that month's service days (`fee_lines`, prorated by days; a month a former
  system invoiced counts too: the service was given and paid for);
- a monitoring month paid from a block: the block's price per hour (price ÷ (hours + bonus)) × the hours
  deducted (the `monitoring_block` fee line itself is zero);
- the month's work at what it is billed: hourly and overage at their rates, a retainer shortfall at the
  retainer's rate, included hours nothing (the fee is their price); block hours at the block's price per
  hour; retainer money used.

The exact sum is rounded half-up to the cent once per client and month (and once per agreement and
month for the per-agreement figures). A window's figure is the sum of its months' figures, so a total row
always equals the sum of its month rows.

**Charges** (parts, materials, one-off) are revenue in the month of their date, at their amount, and their
cost to the MSP adds to the month's cost. They are passed through, not paid time: the effective rate is
what is left of revenue once their cost is paid, per hour of time. (The fit compares arrangements for time,
so it leaves charges out on both sides.)

**Time** of a month: the rounded minutes of its time entries (as the layers paid them) plus the
unpaid-work minutes of triage (alerts that reached a person × the MSP's model). **Cost** = time × the
labor cost per hour, half-up to the cent per month; **margin** = revenue − cost; **effective rate** =
revenue ÷ hours, half-up to the cent (none without time); flagged when below the target rate.

**Fit**: a catalog offer replayed as the client's only arrangement for a window of whole months, on the
client's real time entries of the window, through the same layers and fee lines, in memory. What the
client would have paid: the offer's fees for every month of the window, plus what the layers bill under
it, plus whole blocks for a block offer (one bought whenever the balance cannot pay for the next entry).
The months are totalled by the revenue rule above (fees + billed usage, rounded once per month), so the
replay of the arrangement a client actually has equals what it actually paid.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any

from tenure.agreements.rules import (
    MINUTES_PER_HOUR,
    Allocation,
    MonitoringMonth,
    Policy,
    Portion,
    PrepaidBlock,
    Terms,
    Work,
    allocate,
    bonus_minutes,
    first_of_next_month,
    month_of,
    revenue_of,
    round_up,
)
from tenure.billing.rules import Line, fee_lines, month_end, usage_lines
from tenure.money import ZERO, round_cents

NO_AGREEMENT = None  # the bucket of what no agreement can be told apart for (block work, the MSP's rate, alerts)
CHOSEN_BY_LOWEST_TOTAL = "lowest_total"
CHOSEN_BY_BEST_MARGIN = "best_margin"


# ------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Economics:
    """The MSP's settings the owner's view uses."""

    labor_cost_per_hour: Decimal | None
    target_effective_rate: Decimal | None
    minutes_per_alert: int  # the unpaid-work model's total (seed 004: 10 + 15 + 20)


@dataclass(frozen=True, slots=True)
class Window:
    """Whole months, oldest first: `months` holds the 1st of each."""

    months: tuple[dt.date, ...]

    @property
    def first(self) -> dt.date:
        return self.months[0]

    @property
    def last(self) -> dt.date:
        """The window's last day."""
        return month_end(self.months[-1])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(month_of(m) for m in self.months)

    def __contains__(self, d: object) -> bool:
        return isinstance(d, dt.date) and self.first <= d <= self.last


def window(first_month: dt.date, last_month: dt.date) -> Window:
    """The months from `first_month` to `last_month`, both included (any day of a month names it)."""
    start, stop = first_month.replace(day=1), last_month.replace(day=1)
    if stop < start:
        raise ValueError(f"the window ends ({month_of(stop)}) before it starts ({month_of(start)})")
    months = []
    while start <= stop:
        months.append(start)
        start = first_of_next_month(start)
    return Window(tuple(months))


# ------------------------------------------------------------------------------------------ figures


@dataclass(frozen=True, slots=True)
class Figures:
    """Revenue, time, cost, margin and effective rate of one row of the report, rounded as shown."""

    revenue: Decimal
    minutes: int
    cost: Decimal | None  # None when the MSP has no labor cost set
    margin: Decimal | None
    effective_rate: Decimal | None  # None without time
    flagged: bool


def cost_of(minutes: int, economics: Economics) -> Decimal | None:
    """hours × labor cost per hour, half-up to the cent."""
    if economics.labor_cost_per_hour is None:
        return None
    return _cost(minutes, economics.labor_cost_per_hour)


@lru_cache(maxsize=4096)
def _cost(minutes: int, rate: Decimal) -> Decimal:
    # a whole MSP's year asks for the same few durations (multiples of the rounding) a hundred thousand times
    return round_cents(rate * minutes / MINUTES_PER_HOUR)


def effective_rate(revenue: Decimal, minutes: int) -> Decimal | None:
    """revenue ÷ hours, half-up to the cent; none without time."""
    if minutes <= 0:
        return None
    return round_cents(revenue * MINUTES_PER_HOUR / minutes)


def figures(
    revenue: Decimal, minutes: int, cost: Decimal | None, economics: Economics, passed_through: Decimal = ZERO
) -> Figures:
    """A row's figures from its (rounded) revenue, its minutes and its (rounded) cost (with `passed_through`,
    the cost of charges in it, which the effective rate leaves out of revenue)."""
    rate = effective_rate(revenue - passed_through, minutes)
    target = economics.target_effective_rate
    flagged = rate is not None and target is not None and rate < target
    return Figures(revenue, minutes, cost, None if cost is None else revenue - cost, rate, flagged)


def _sum_costs(costs: Iterable[Decimal | None]) -> Decimal | None:
    total = ZERO
    for c in costs:
        if c is None:
            return None
        total += c
    return total


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """One client's month. `fees` are whole cents; `usage` (billed hourly, overage and retainer shortfall)
    and `prepaid` (block hours at the block's price per hour, retainer money used) are exact: `revenue` is
    their sum with the fees, rounded once."""

    month: str
    figures: Figures
    fees: Decimal
    usage: Decimal
    prepaid: Decimal
    work_minutes: int
    unpaid_minutes: int
    alerts: int
    charges: Decimal = ZERO  # parts, materials, one-off charges dated in the month
    charge_cost: Decimal = ZERO  # what they cost the MSP (in `figures.cost`)

    @property
    def exact_revenue(self) -> Decimal:
        return self.fees + self.usage + self.prepaid + self.charges


@dataclass(frozen=True, slots=True)
class AgreementMonth:
    month: str
    revenue: Decimal  # rounded once
    minutes: int


@dataclass(frozen=True, slots=True)
class AgreementFigures:
    """What one agreement earned and took (agreement None: block work, the MSP's own rate, unpaid alerts)."""

    agreement: str | None
    kind: str | None
    figures: Figures
    months: tuple[AgreementMonth, ...]


@dataclass(frozen=True, slots=True)
class ClientFigures:
    client: str
    figures: Figures
    months: tuple[MonthFigures, ...]
    agreements: tuple[AgreementFigures, ...]

    @property
    def active(self) -> bool:
        """Anything to show: revenue or time in the window."""
        return self.figures.revenue != 0 or self.figures.minutes != 0


@dataclass(frozen=True, slots=True)
class ChargeFact:
    """A charge as the owner's view counts it: revenue in its month, its cost added to cost."""

    date: dt.date
    amount: Decimal
    cost: Decimal | None = None


# ---------------------------------------------------------------------------------------- fee lines


def window_fee_lines(terms: Terms, win: Window, monitoring: Mapping[str, MonitoringMonth]) -> list[Line]:
    """The fee lines of one agreement for every service day of the window, one per agreement and month
    (`billing.rules.fee_lines`, as if every earlier day had been billed). A day a former system invoiced
    (`billed_through`) is still a service day: its fee is that month's revenue. A monitoring month paid from a
    block comes back as its zero `monitoring_block` line."""
    if terms.monthly_fee is None or terms.monthly_fee <= 0:
        return []
    if terms.start > win.last or (terms.end is not None and terms.end < win.first):
        return []
    unbilled = replace(terms, billed_through=None, billing_interval_months=1)  # earned by month, whenever invoiced
    billed: list[tuple[dt.date, dt.date]] = []
    if terms.start < win.first:
        before = win.first - dt.timedelta(days=1)
        billed.append((terms.start, before if terms.end is None else min(before, terms.end)))
    return fee_lines(unbilled, win.months[-1], billed, monitoring)


def _monitoring_by_agreement(allocation: Allocation) -> dict[str, dict[str, MonitoringMonth]]:
    found: dict[str, dict[str, MonitoringMonth]] = defaultdict(dict)
    for mm in allocation.monitoring:
        found[mm.agreement_key][mm.month] = mm
    return found


def monitoring_value(month: MonitoringMonth, blocks: Mapping[str, PrepaidBlock]) -> Decimal:
    """A monitoring month paid from blocks: each block's price per hour × the hours it gave, unrounded."""
    return sum((blocks[key].value_of(minutes) for key, minutes in month.draws if key in blocks), ZERO)


# ------------------------------------------------------------------------------------ profitability


class _Tally:
    """Exact sums per month index, for the client and per agreement."""

    def __init__(self, months: int) -> None:
        self.n = months
        self.fees = [ZERO] * months
        self.usage = [ZERO] * months
        self.prepaid = [ZERO] * months
        self.minutes = [0] * months
        self.charges = [ZERO] * months
        self.charge_cost = [ZERO] * months
        self.agreement_revenue: dict[str | None, list[Decimal]] = {}
        self.agreement_minutes: dict[str | None, list[int]] = {}

    def to_agreement(self, key: str | None, i: int, revenue: Decimal, minutes: int) -> None:
        rev = self.agreement_revenue.get(key)
        if rev is None:
            rev = self.agreement_revenue[key] = [ZERO] * self.n
            self.agreement_minutes[key] = [0] * self.n
        rev[i] += revenue
        self.agreement_minutes[key][i] += minutes


def profitability(
    client: str,
    terms: Sequence[Terms],
    blocks: Sequence[PrepaidBlock],
    allocation: Allocation,
    win: Window,
    alerts: Mapping[str, int],
    economics: Economics,
    charges: Sequence[ChargeFact] = (),
) -> ClientFigures:
    """One client's figures per month and per agreement over the window.

    `allocation` is the client's allocation through at least the window's last day (frozen work included:
    what its invoices counted); `alerts` the number of its alerts per month (YYYY-MM) that reached a person;
    `charges` its charges (not voided): revenue in their month, their cost added to cost (no agreement's).
    """
    labels = win.labels
    index = {label: i for i, label in enumerate(labels)}
    tally = _Tally(len(labels))
    by_key = {b.key: b for b in blocks}
    kinds = {t.key: t.kind for t in terms}

    monitoring = _monitoring_by_agreement(allocation)
    for t in terms:
        for line in window_fee_lines(t, win, monitoring.get(t.key, {})):
            if line.service_from is None or line.amount == 0:
                continue
            i = index[month_of(line.service_from)]
            tally.fees[i] += line.amount
            tally.to_agreement(t.key, i, line.amount, 0)
    for mm in allocation.monitoring:
        j = index.get(mm.month)
        if j is not None and mm.paid_from_block:
            value = monitoring_value(mm, by_key)
            tally.prepaid[j] += value
            tally.to_agreement(mm.agreement_key, j, value, 0)
    for charge in charges:
        j = index.get(month_of(charge.date))
        if j is not None:
            tally.charges[j] += charge.amount
            tally.charge_cost[j] += charge.cost or ZERO
            tally.to_agreement(NO_AGREEMENT, j, charge.amount, 0)

    # the hot loop (a million portions for a whole MSP): month by arithmetic, agreement sums inlined
    first, last = win.first, win.last
    base = first.year * 12 + first.month
    usage, prepaid, worked = tally.usage, tally.prepaid, tally.minutes
    revenue_by, minutes_by = tally.agreement_revenue, tally.agreement_minutes
    earned = revenue_of
    for p in allocation.portions:
        d = p.date
        if d < first or d > last:
            continue
        k = d.year * 12 + d.month - base
        layer, key, minutes = p.layer, p.agreement_key, p.minutes
        worked[k] += minutes
        rev = revenue_by.get(key)
        if rev is None:
            rev = revenue_by[key] = [ZERO] * tally.n
            minutes_by[key] = [0] * tally.n
        minutes_by[key][k] += minutes
        if layer == "included":
            continue  # earns nothing: the fee is its price (revenue_of)
        value = earned(p, by_key)
        rev[k] += value
        if layer == "billable":
            usage[k] += value
        else:
            prepaid[k] += value

    months = []
    for i, label in enumerate(labels):
        count = alerts.get(label, 0)
        unpaid = count * economics.minutes_per_alert
        if unpaid:
            tally.to_agreement(NO_AGREEMENT, i, ZERO, unpaid)
        revenue = round_cents(tally.fees[i] + tally.usage[i] + tally.prepaid[i] + tally.charges[i])
        minutes = tally.minutes[i] + unpaid
        labor = cost_of(minutes, economics)
        spent = tally.charge_cost[i]
        months.append(
            MonthFigures(
                label,
                figures(revenue, minutes, None if labor is None else labor + spent, economics, spent),
                tally.fees[i],
                tally.usage[i],
                tally.prepaid[i],
                tally.minutes[i],
                unpaid,
                count,
                tally.charges[i],
                spent,
            )
        )
    return ClientFigures(client, _total(months, economics), tuple(months), _agreements(tally, labels, kinds, economics))


def _total(months: Sequence[MonthFigures], economics: Economics) -> Figures:
    revenue = sum((m.figures.revenue for m in months), ZERO)
    minutes = sum(m.figures.minutes for m in months)
    spent = sum((m.charge_cost for m in months), ZERO)
    return figures(revenue, minutes, _sum_costs(m.figures.cost for m in months), economics, spent)


def _agreements(
    tally: _Tally, labels: Sequence[str], kinds: Mapping[str, str], economics: Economics
) -> tuple[AgreementFigures, ...]:
    rows = []
    for key in sorted(tally.agreement_revenue, key=lambda k: (k is None, k or "")):
        revenues, minutes_ = tally.agreement_revenue[key], tally.agreement_minutes[key]
        months = tuple(
            AgreementMonth(label, round_cents(revenues[i]) if revenues[i] else ZERO, minutes_[i])
            for i, label in enumerate(labels)
        )
        revenue = sum((m.revenue for m in months), ZERO)
        minutes = sum(m.minutes for m in months)
        if revenue == 0 and minutes == 0:
            continue
        cost = _sum_costs(cost_of(m.minutes, economics) for m in months)
        spent = sum(tally.charge_cost, ZERO) if key is NO_AGREEMENT else ZERO  # charges are no agreement's
        cost = None if cost is None else cost + spent
        rows.append(
            AgreementFigures(
                key, kinds.get(key) if key else None, figures(revenue, minutes, cost, economics, spent), months
            )
        )
    return tuple(rows)


# ---------------------------------------------------------------------------------------- the trail


@dataclass(frozen=True, slots=True)
class FeeItem:
    agreement: str
    kind: str  # fee | catch_up | monitoring_block (the fee lines' kinds)
    service_from: dt.date
    service_to: dt.date
    description: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One portion of one time entry: which layer paid it and what it earned (exact)."""

    work_key: str
    date: dt.date
    work_type: str | None
    layer: str
    minutes: int
    rate: Decimal | None
    line_kind: str | None
    agreement: str | None
    block: str | None
    price_per_hour: Decimal | None  # the block's, for block minutes
    amount: Decimal


@dataclass(frozen=True, slots=True)
class DrawItem:
    """Minutes taken from a block, by a time entry or a monitoring month, at the block's price per hour."""

    block: str
    ref: str  # the time entry's key, or "agreement/YYYY-MM"
    date: dt.date
    kind: str  # deduction | monitoring
    minutes: int
    price_per_hour: Decimal
    value: Decimal


@dataclass(frozen=True, slots=True)
class MonitoringItem:
    agreement: str
    month: str
    paid_from_block: bool
    draws: tuple[DrawItem, ...]
    value: Decimal


@dataclass(frozen=True, slots=True)
class AlertFact:
    """An alert that reached a person (a quote decision: a forwarded alert costs no technician time)."""

    id: int
    decision: str
    service: str
    title: str
    first_seen: dt.datetime


@dataclass(frozen=True, slots=True)
class Trail:
    """Every figure of one client's month, each with its source."""

    client: str
    month: MonthFigures
    fees: tuple[FeeItem, ...]
    work: tuple[WorkItem, ...]
    monitoring: tuple[MonitoringItem, ...]
    draws: tuple[DrawItem, ...]
    alerts: tuple[AlertFact, ...]
    minutes_per_alert: int


def explain(
    client: str,
    terms: Sequence[Terms],
    blocks: Sequence[PrepaidBlock],
    works: Iterable[Work],
    allocation: Allocation,
    month: dt.date,
    alerts: Sequence[AlertFact],
    economics: Economics,
    charges: Sequence[ChargeFact] = (),
) -> Trail:
    """The trail of one client's month: the same figures `profitability` gives, item by item."""
    win = window(month, month)
    label = win.labels[0]
    figures_ = profitability(
        client, terms, blocks, allocation, win, {label: len(alerts)}, economics, charges
    ).months[0]
    by_key = {b.key: b for b in blocks}
    types = {w.key: w.work_type for w in works}
    monitoring = _monitoring_by_agreement(allocation)
    fees = [
        FeeItem(t.key, line.kind, line.service_from, line.service_to, line.description, line.amount)
        for t in terms
        for line in window_fee_lines(t, win, monitoring.get(t.key, {}))
        if line.service_from is not None and line.service_to is not None
    ]
    work: list[WorkItem] = []
    draws: list[DrawItem] = []
    for p in allocation.portions:
        if p.date not in win:
            continue
        block = by_key.get(p.block_key) if p.block_key else None
        value = revenue_of(p, by_key)
        work.append(
            WorkItem(
                p.work_key,
                p.date,
                types.get(p.work_key),
                p.layer,
                p.minutes,
                p.rate,
                p.line_kind,
                p.agreement_key,
                p.block_key,
                block.price_per_hour if block else None,
                value,
            )
        )
        if p.layer == "block" and block is not None:
            draws.append(DrawItem(block.key, p.work_key, p.date, "deduction", p.minutes, block.price_per_hour, value))
    months = []
    for mm in allocation.monitoring:
        if mm.month != label:
            continue
        month_draws = tuple(
            DrawItem(
                key,
                f"{mm.agreement_key}/{mm.month}",
                mm.date,
                "monitoring",
                minutes,
                by_key[key].price_per_hour,
                by_key[key].value_of(minutes),
            )
            for key, minutes in mm.draws
            if key in by_key
        )
        draws.extend(month_draws)
        months.append(
            MonitoringItem(
                mm.agreement_key, mm.month, mm.paid_from_block, month_draws, sum((d.value for d in month_draws), ZERO)
            )
        )
    draws.sort(key=lambda d: (d.date, d.kind != "monitoring", d.ref, d.block))
    return Trail(
        client,
        figures_,
        tuple(fees),
        tuple(work),
        tuple(months),
        tuple(draws),
        tuple(alerts),
        economics.minutes_per_alert,
    )


# ------------------------------------------------------------------------------------------- offers


@dataclass(frozen=True, slots=True)
class Offer:
    """A catalog offer: agreement terms of any kind (`terms`, dated when replayed), or a block size and price."""

    key: str
    name: str | None
    kind: str  # an agreement kind, or "block"
    terms: Terms | None = None
    block_minutes: int = 0
    price: Decimal = ZERO
    monthly_fee: Decimal | None = None

    @property
    def is_block(self) -> bool:
        return self.terms is None

    def covered_services(self) -> frozenset[str]:
        if self.terms is None:
            return frozenset()
        return self.terms.covers - self.terms.excludes


def _minutes(hours: Any) -> int | None:
    if hours is None:
        return None
    minutes = Decimal(str(hours)) * MINUTES_PER_HOUR
    if minutes != minutes.to_integral_value():
        raise ValueError(f"{hours} hours is not a whole number of minutes")
    return int(minutes)


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def offer_from(raw: Mapping[str, Any]) -> Offer:
    """An offer from the MSP's `catalog` as the book stores it (money as strings, hours as numbers)."""
    key = str(raw["key"])
    name = raw.get("name")
    if raw.get("kind") is None:
        return Offer(
            key,
            name,
            "block",
            block_minutes=_minutes(raw.get("block_hours")) or 0,
            price=_money(raw.get("price")) or ZERO,
        )
    placeholder = dt.date.min
    terms = Terms(
        key=key,
        kind=str(raw["kind"]),
        start=placeholder,
        monthly_fee=_money(raw.get("monthly_fee")),
        included_minutes=_minutes(raw.get("included_hours")),
        overage_rate=_money(raw.get("overage_rate")),
        hourly_rate=_money(raw.get("hourly_rate")),
        block_minutes_per_month=_minutes(raw.get("block_hours_per_month")),
        covers=frozenset(raw.get("covers") or ()),
        excludes=frozenset(raw.get("excludes") or ()),
    )
    return Offer(key, name, terms.kind, terms=terms, monthly_fee=terms.monthly_fee)


# ---------------------------------------------------------------------------------------------- fit


@dataclass(frozen=True, slots=True)
class FitMonth:
    month: str
    total: Decimal  # round(fees + usage) + blocks bought
    fees: Decimal
    usage: Decimal  # exact
    blocks: Decimal
    minutes: int


@dataclass(frozen=True, slots=True)
class Fit:
    """One offer replayed on a client's window: what it would have paid, and the MSP's margin under it."""

    offer: Offer
    figures: Figures  # revenue = total: what the client would have paid
    months: tuple[FitMonth, ...]
    fees: Decimal
    usage: Decimal  # the months' billed usage, each rounded once
    blocks_bought: tuple[PrepaidBlock, ...]
    blocks_left_minutes: int
    lines: tuple[Line, ...]  # the usage as invoice lines over the window (one per kind and rate)

    @property
    def total(self) -> Decimal:
        return self.figures.revenue

    @property
    def block_money(self) -> Decimal:
        return sum((b.price for b in self.blocks_bought), ZERO)


def _in_window(works: Iterable[Work], win: Window) -> list[Work]:
    first, last = win.first, win.last
    return [w for w in works if first <= w.date <= last]


BLOCK_REPLAY_ENTRIES = 64  # entries per pass of a block replay


def _buy_blocks(
    offer: Offer, works: Sequence[Work], win: Window, policy: Policy
) -> tuple[list[PrepaidBlock], Allocation]:
    """Whole blocks of the offer, each bought on the day the balance cannot pay for an entry.

    A few dozen entries at a time in the layers' order (date, then key): blocks are bought on the day of
    the entry whose rounded minutes the balance in hand cannot cover, then the layers allocate the entries
    with them; should anything still fall through to be billed, more are bought on the day of the entry
    that needs each one and the layers allocate again (a guard: with the block as the only arrangement
    the block layer takes every minute). The next entries start with the balances the layers left. Blocks
    of an offer never expire and nothing else draws on them, so this is what one pass over the whole window
    gives, while each pass sees only the blocks still in play (a busy client buys hundreds a year)."""
    bonus = bonus_minutes(offer.block_minutes, policy.block_bonus)
    size = offer.block_minutes + bonus
    bought: list[PrepaidBlock] = []
    in_hand: list[PrepaidBlock] = []  # bought earlier, with what the layers left of them
    portions: list[Portion] = []
    balances: dict[str, int] = {}

    def buy(day: dt.date) -> int:
        block = PrepaidBlock(f"{offer.key}#{len(bought) + 1:05d}", day, offer.block_minutes, bonus, offer.price)
        bought.append(block)
        in_hand.append(block)
        return size

    ordered = sorted(works, key=lambda w: (w.date, w.key))
    for start in range(0, len(ordered), BLOCK_REPLAY_ENTRIES):
        entries = ordered[start : start + BLOCK_REPLAY_ENTRIES]
        balance = sum(b.total_minutes for b in in_hand)
        for w in entries:
            balance -= round_up(w.minutes, policy.rounding_minutes)
            while balance < 0 and size > 0:
                balance += buy(w.date)
        allocation = allocate(entries, (), in_hand, (), policy, through=win.last)
        for _ in range(len(entries)):
            billed = [p for p in allocation.portions if p.layer == "billable"]
            if not billed or size <= 0:
                break
            capacity = needed = 0
            for p in billed:
                needed += p.minutes
                while capacity < needed:
                    capacity += buy(p.date)
            allocation = allocate(entries, (), in_hand, (), policy, through=win.last)
        portions.extend(allocation.portions)
        balances.update(allocation.block_balances)
        in_hand = [replace(b, minutes=balances[b.key], bonus_minutes=0) for b in in_hand if balances[b.key] > 0]
    return bought, Allocation(tuple(portions), (), (), balances, ZERO)


def replay(
    offer: Offer,
    works: Iterable[Work],
    win: Window,
    policy: Policy,
    alerts: Mapping[str, int],
    economics: Economics,
) -> Fit:
    """`offer` as the client's only arrangement for the window, on its real time entries of the window.

    An agreement offer runs from the window's first day to its last, with no block and no deposit (a
    monitoring offer's months are then paid by its fee); a block offer buys whole blocks as the balance
    runs out (`_buy_blocks`). Time, cost and margin count the same minutes as the client's profitability:
    its rounded time entries plus its unpaid-work alerts (`alerts` per month)."""
    entries = _in_window(works, win)
    bought: list[PrepaidBlock] = []
    agreements: list[Terms] = []
    if offer.terms is None:
        bought, allocation = _buy_blocks(offer, entries, win, policy)
    else:
        agreements = [replace(offer.terms, start=win.first, end=win.last)]
        allocation = allocate(entries, agreements, (), (), policy, through=win.last)
    seen = profitability(offer.key, agreements, bought, allocation, win, alerts, economics)
    purchases: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for b in bought:
        purchases[month_of(b.purchased)] += b.price
    months = []
    for m in seen.months:
        # what the client pays: fees and billed usage, rounded once; prepaid hours as the blocks it bought
        paid = round_cents(m.fees + m.usage) + purchases[m.month]
        months.append(FitMonth(m.month, paid, m.fees, m.usage, purchases[m.month], m.figures.minutes))
    total = sum((m.total for m in months), ZERO)
    minutes = sum(m.minutes for m in months)
    cost = _sum_costs(m.figures.cost for m in seen.months)
    return Fit(
        offer,
        figures(total, minutes, cost, economics),
        tuple(months),
        sum((m.fees for m in months), ZERO),
        sum((round_cents(m.usage) for m in months), ZERO),
        tuple(bought),
        sum(allocation.block_balances.values()),
        tuple(usage_lines(allocation.portions)),
    )


def covering(offers: Iterable[Offer], services: Iterable[str]) -> list[Offer]:
    """The agreement offers whose covers (less excludes) hold every one of `services` (none for no service)."""
    wanted = frozenset(services)
    if not wanted:
        return []
    return [o for o in offers if not o.is_block and wanted <= o.covered_services()]


def worth_serving(fit: Fit) -> bool:
    """Not flagged (effective rate at or above the target, or no time) and no loss."""
    return not fit.figures.flagged and (fit.figures.margin is None or fit.figures.margin >= 0)


def would_cover(fits: Sequence[Fit]) -> tuple[Fit, str] | None:
    """The offer to propose among replays of offers that cover the uncovered services.

    The **lowest total** among those under which the client is worth serving (`worth_serving`): the
    cheapest agreement the client would sign that still pays for the time it takes. When no covering offer
    makes the client worth serving, the **best margin** (the one that loses least). Ties: the offer's key.
    Returns the fit and how it was chosen (`lowest_total` or `best_margin`), or None without any fit.
    """
    if not fits:
        return None
    good = [f for f in fits if worth_serving(f)]
    if good:
        return min(good, key=lambda f: (f.total, f.offer.key)), CHOSEN_BY_LOWEST_TOTAL
    best = min(fits, key=lambda f: (-(f.total if f.figures.margin is None else f.figures.margin), f.total, f.offer.key))
    return best, CHOSEN_BY_BEST_MARGIN

"""The coverage layers: how every minute of a client's work is paid.

DOMAIN.md, "How an hour of work is paid" and "Billing".

Pure rules: values in, values out; no database, no I/O, no clock. Money is `Decimal`, durations are
integer minutes, block hours are kept as minutes.

Each time entry is rounded up to the MSP's unit, then the entries of one client are allocated in order of
(date, key) through four layers; what one layer cannot take falls to the next:

1. included hours of a `managed` agreement that covers the work type (per calendar month);
2. prepaid blocks, oldest first (the monthly monitoring deduction competes here, on the 1st, before that
   day's entries);
3. the retainer (money), at the retainer's hourly rate, never below zero; the shortfall is billed at
   that rate;
4. billable by the hour: overage rate, else an agreement's hourly rate, else the MSP's rate.

On one date purchases and deposits come before deductions. Work that was already invoiced is *frozen*: its
portions are kept exactly and what they consumed is reserved before anything else is allocated, so a
back-dated entry can never take hours or money an issued invoice already counted on.
"""

from __future__ import annotations

import bisect
import datetime as dt
import operator
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Literal, NamedTuple

from tenure.money import ZERO, round_cents

Layer = Literal["included", "block", "retainer", "billable"]
LineKind = Literal["overage", "hourly", "retainer"]
BlockMoveKind = Literal["purchase", "bonus", "expiry", "monitoring", "deduction"]
RetainerMoveKind = Literal["deposit", "deduction"]
Notice = Literal["low", "zero"]

MINUTES_PER_HOUR = 60
LAYER_ORDER: dict[str, int] = {"included": 0, "block": 1, "retainer": 2, "billable": 3}
# within one date: purchases and deposits first, then expiries, the monitoring deduction, then work
_MOVE_RANK: dict[str, int] = {"purchase": 0, "bonus": 0, "deposit": 0, "expiry": 1, "monitoring": 2,
                              "deduction": 3}


# --------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Terms:
    """An agreement's terms, as the rules need them."""

    key: str
    kind: str  # managed | monitoring | call_before_service | retainer | adhoc
    start: dt.date
    end: dt.date | None = None
    monthly_fee: Decimal | None = None
    included_minutes: int | None = None
    overage_rate: Decimal | None = None
    hourly_rate: Decimal | None = None
    block_minutes_per_month: int | None = None
    covers: frozenset[str] = frozenset()
    excludes: frozenset[str] = frozenset()
    billed_through: dt.date | None = None
    term_months: int | None = None
    renewal: str = "auto"  # auto | ends: what happens at the end of each term
    billing_interval_months: int = 1  # the fee invoiced this many months in advance (1, 3 or 12)

    def active_on(self, d: dt.date) -> bool:
        return self.start <= d and (self.end is None or d <= self.end)

    def covers_work(self, work_type: str) -> bool:
        return work_type in self.covers and work_type not in self.excludes


@dataclass(frozen=True, slots=True)
class PrepaidBlock:
    """Hours bought on a date (kept as minutes), with the bonus fixed at purchase."""

    key: str
    purchased: dt.date
    minutes: int
    bonus_minutes: int
    price: Decimal
    expires: dt.date | None = None  # the last day its minutes can be used

    @property
    def total_minutes(self) -> int:
        return self.minutes + self.bonus_minutes

    @property
    def price_per_hour(self) -> Decimal:
        """price ÷ (hours + bonus hours), unrounded: refunds and profitability round once, later."""
        if self.total_minutes <= 0:
            return ZERO
        return self.price * MINUTES_PER_HOUR / self.total_minutes

    def value_of(self, minutes: int) -> Decimal:
        """What `minutes` of this block cost the client, unrounded (price × minutes ÷ total minutes)."""
        if self.total_minutes <= 0:
            return ZERO
        return self.price * minutes / self.total_minutes

    def usable_on(self, d: dt.date) -> bool:
        return self.purchased <= d and (self.expires is None or d <= self.expires)


@dataclass(frozen=True, slots=True)
class Deposit:
    """Retainer money paid in advance."""

    key: str
    date: dt.date
    amount: Decimal


class Work(NamedTuple):
    """A time entry: raw minutes, rounded by the rules. (A NamedTuple: a billing run makes a million.)"""

    key: str
    date: dt.date
    minutes: int
    work_type: str


@dataclass(frozen=True, slots=True)
class Policy:
    """The MSP's settings the layers use."""

    rounding_minutes: int
    hourly_rate: Decimal  # the MSP's default time-and-materials rate
    block_bonus: tuple[tuple[int | Decimal, int | Decimal], ...] = ()  # (min_hours, bonus_hours)


# -------------------------------------------------------------------------------------------- outputs


class Portion(NamedTuple):
    """The part of one work entry one layer paid. (A NamedTuple, like Work: cheap to make by the million.)

    `amount`: ZERO for included and block minutes; the money drawn for `retainer`; for `billable` the exact,
    unrounded value (minutes × rate ÷ 60, or the retainer shortfall in cents): invoice lines round once.
    """

    work_key: str
    date: dt.date
    layer: Layer
    minutes: int
    block_key: str | None = None
    agreement_key: str | None = None
    rate: Decimal | None = None
    line_kind: LineKind | None = None
    amount: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class MonitoringMonth:
    """One month of a monitoring agreement: paid from a block (draws) or by the fee (no draws)."""

    agreement_key: str
    month: str  # YYYY-MM
    date: dt.date  # the 1st
    paid_from_block: bool
    draws: tuple[tuple[str, int], ...] = ()  # (block key, minutes), oldest block first

    @property
    def minutes(self) -> int:
        return sum(m for _, m in self.draws)


@dataclass(frozen=True, slots=True)
class Expiry:
    block_key: str
    date: dt.date  # the day after the block's last usable day
    minutes: int


@dataclass(frozen=True, slots=True)
class BlockMove:
    """One movement of a block's balance (minutes; negative when taken out)."""

    block_key: str
    date: dt.date
    kind: BlockMoveKind
    minutes: int
    ref: str  # the block, the work entry, or "agreement/YYYY-MM"


@dataclass(frozen=True, slots=True)
class RetainerMove:
    date: dt.date
    kind: RetainerMoveKind
    amount: Decimal
    ref: str  # the deposit or the work entry


@dataclass(frozen=True, slots=True)
class Allocation:
    portions: tuple[Portion, ...]
    monitoring: tuple[MonitoringMonth, ...]
    expiries: tuple[Expiry, ...]
    block_balances: dict[str, int]  # after everything through `through`
    retainer_balance: Decimal
    block_moves: tuple[BlockMove, ...] = ()
    retainer_moves: tuple[RetainerMove, ...] = ()

    def portions_for(self, work_key: str) -> tuple[Portion, ...]:
        return tuple(p for p in self.portions if p.work_key == work_key)

    def portions_by_work(self) -> dict[str, tuple[Portion, ...]]:
        grouped: dict[str, list[Portion]] = defaultdict(list)
        for p in self.portions:
            grouped[p.work_key].append(p)
        return {k: tuple(v) for k, v in grouped.items()}

    def block_balance_on(self, block_key: str, d: dt.date) -> int:
        """A block's balance at the end of day `d`."""
        return sum(m.minutes for m in self.block_moves if m.block_key == block_key and m.date <= d)

    def blocks_balance_on(self, d: dt.date) -> int:
        """All blocks together at the end of day `d`."""
        return sum(m.minutes for m in self.block_moves if m.date <= d)

    def retainer_balance_on(self, d: dt.date) -> Decimal:
        return sum((m.amount for m in self.retainer_moves if m.date <= d), ZERO)

    def block_usage(self, block_key: str | None = None) -> list[tuple[dt.date, int]]:
        """Minutes used (work and monitoring, not expiries) per date: the input of `burn_rate`."""
        used: dict[dt.date, int] = defaultdict(int)
        for m in self.block_moves:
            if m.kind in ("deduction", "monitoring") and block_key in (None, m.block_key):
                used[m.date] -= m.minutes
        return sorted(used.items())

    def balance_series(self, block_key: str | None = None) -> list[tuple[dt.date, int]]:
        """End-of-day balance on every date something moved: the input of `threshold_crossings`."""
        series: list[tuple[dt.date, int]] = []
        balance = 0
        for m in self.block_moves:
            if block_key not in (None, m.block_key):
                continue
            balance += m.minutes
            if series and series[-1][0] == m.date:
                series[-1] = (m.date, balance)
            else:
                series.append((m.date, balance))
        return series


# ----------------------------------------------------------------------------------------- small rules


def round_up(minutes: int, unit: int) -> int:
    """Ceil `minutes` to a multiple of `unit` (0 stays 0; a unit of 0 or 1 leaves minutes as they are)."""
    if minutes < 0:
        raise ValueError(f"negative duration: {minutes} minutes")
    if unit <= 1:
        return minutes
    return -(-minutes // unit) * unit


def bonus_minutes(block_minutes: int, tiers: Iterable[tuple[int | Decimal, int | Decimal]]) -> int:
    """The bonus of the largest tier whose min_hours ≤ the block's hours (seed 001's free hours)."""
    best: tuple[int | Decimal, int | Decimal] | None = None
    for min_hours, bonus_hours in tiers:
        if min_hours * MINUTES_PER_HOUR <= block_minutes and (best is None or min_hours > best[0]):
            best = (min_hours, bonus_hours)
    return 0 if best is None else int(best[1] * MINUTES_PER_HOUR)


def month_of(d: dt.date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


_MONTHS: dict[dt.date, str] = {}  # month_of by date, memoised: a run asks it for a million entries


def _month_of(d: dt.date) -> str:
    month = _MONTHS.get(d)
    if month is None:
        month = _MONTHS[d] = month_of(d)
    return month


def first_of_next_month(d: dt.date) -> dt.date:
    return dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)


def add_months(d: dt.date, months: int) -> dt.date:
    """The same day `months` later (earlier when negative), the month's last day where it has fewer days."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    following = dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return dt.date(year, month + 1, min(d.day, (following - dt.timedelta(days=1)).day))


def term_end(start: dt.date, term_months: int, term: int = 1) -> dt.date:
    """The last day of an agreement's `term`-th term (the first by default): the day before its start plus
    `term` × `term_months` months (a yearly agreement signed 2026-03-15 ends its first term 2027-03-14)."""
    return add_months(start, term * term_months) - dt.timedelta(days=1)


def ends_by_term(start: dt.date, end: dt.date | None, term_months: int | None, renewal: str | None) -> dt.date | None:
    """An agreement's end: with `renewal: ends` and a term, the last day of its first term (or the end given,
    when earlier); otherwise the end given (`auto` renews for another term, the agreement goes on)."""
    if renewal != "ends" or not term_months:
        return end
    last = term_end(start, term_months)
    return last if end is None else min(end, last)


def current_term_end(terms: Terms, day: dt.date) -> dt.date | None:
    """The last day of the term `day` falls in (or of the first term, before the start), or None: no term, or
    the agreement ends on `day` or before that term's end anyway (then nothing is renewed or ended by it)."""
    if not terms.term_months:
        return None
    term = 1
    if day > terms.start:
        # months from the start, then the term that holds `day` (a step back where the day of month is short)
        elapsed = (day.year - terms.start.year) * 12 + day.month - terms.start.month
        term = max(1, elapsed // terms.term_months)
        while term > 1 and term_end(terms.start, terms.term_months, term - 1) >= day:
            term -= 1
        while term_end(terms.start, terms.term_months, term) < day:
            term += 1
    last = term_end(terms.start, terms.term_months, term)
    if terms.renewal == "ends" and term > 1:
        return None  # the agreement ended with its first term
    if terms.end is not None and terms.end < last:
        return None
    return last


def term_notice_due(terms: Terms, day: dt.date, notice_days: int) -> dt.date | None:
    """The end of the term the owner is to be told about on `day`: the current term's last day when `day`
    is at most `notice_days` before it (and not after it), else None."""
    last = current_term_end(terms, day)
    if last is None or day > last or (last - day).days > notice_days:
        return None
    return last


def interval_last_month(terms: Terms, month_start: dt.date) -> dt.date:
    """The 1st of the last month of the billing interval that holds the month of `month_start`, counted in
    intervals of `billing_interval_months` from the agreement's start month (the month itself when monthly,
    or before the start)."""
    every = max(1, terms.billing_interval_months or 1)
    elapsed = (month_start.year - terms.start.year) * 12 + month_start.month - terms.start.month
    first = month_start.replace(day=1)
    if every == 1 or elapsed < 0:
        return first
    return add_months(first, every - 1 - elapsed % every)


def _first_on_or_after(d: dt.date) -> dt.date:
    return d if d.day == 1 else first_of_next_month(d)


def _by_start(agreements: Iterable[Terms]) -> list[Terms]:
    # where several agreements could serve, the earliest start wins, then the key: deterministic
    return sorted(agreements, key=lambda a: (a.start, a.key))


def revenue_of(portion: Portion, blocks: Mapping[str, PrepaidBlock]) -> Decimal:
    """What a portion earns the MSP, unrounded (DOMAIN.md "The owner's view")."""
    if portion.layer == "block" and portion.block_key is not None and portion.block_key in blocks:
        return blocks[portion.block_key].value_of(portion.minutes)
    if portion.layer in ("retainer", "billable"):
        return portion.amount
    return ZERO  # included hours: the fee is their price


# ------------------------------------------------------------------------------------ balances in play


NEW_TERMS_SUFFIX = re.compile(r"(-from-\d{4}-\d{2}-\d{2})+$")


def lineage_of(agreement_key: str) -> str:
    """The agreement whose terms a key continues: new money terms from a date are a new agreement keyed
    `<key>-from-<date>` (book.objects), and it is still the one agreement the client signed."""
    return NEW_TERMS_SUFFIX.sub("", agreement_key)


class _Included:
    """Included minutes left per (agreement, month): full every month, never carried over. An agreement and its
    new terms from a date share the month they meet in: a price change mid-month does not give a second
    month's hours (each entry takes up to the included hours of the terms of its day, less what the month used)."""

    def __init__(self, frozen_used: Mapping[tuple[str, str], int]) -> None:
        self._used: dict[tuple[str, str], int] = defaultdict(int)
        for (key, month), used in frozen_used.items():
            self._used[(lineage_of(key), month)] += used

    def take(self, agreement: Terms, d: dt.date, wanted: int) -> int:
        slot = (lineage_of(agreement.key), _month_of(d))
        left = max(0, (agreement.included_minutes or 0) - self._used[slot])
        taken = min(left, wanted)
        self._used[slot] += taken
        return taken


class _Blocks:
    """Block headroom: total minutes less every frozen draw (reserved up front) less what was drawn so far."""

    def __init__(self, blocks: Sequence[PrepaidBlock], frozen_draws: Mapping[str, int]) -> None:
        self.oldest_first = sorted(blocks, key=lambda b: (b.purchased, b.key))
        self.headroom = {b.key: b.total_minutes - frozen_draws.get(b.key, 0) for b in blocks}

    def usable(self, d: dt.date) -> list[PrepaidBlock]:
        if not self.oldest_first:  # most clients hold no block: the common case costs nothing
            return []
        return [b for b in self.oldest_first if b.usable_on(d) and self.headroom[b.key] > 0]

    def available(self, d: dt.date) -> int:
        return sum(self.headroom[b.key] for b in self.usable(d))

    def draw(self, d: dt.date, wanted: int) -> list[tuple[str, int]]:
        draws: list[tuple[str, int]] = []
        for block in self.usable(d):
            if wanted <= 0:
                break
            taken = min(self.headroom[block.key], wanted)
            self.headroom[block.key] -= taken
            wanted -= taken
            draws.append((block.key, taken))
        return draws


class _Retainer:
    """Retainer money. A draw on day t may take no more than the lowest balance on any day from t on,
    counting deposits and the frozen draws at their dates: so the balance never goes below zero, and money
    an invoiced entry already used stays reserved for it."""

    def __init__(self, deposits: Sequence[Deposit], frozen_draws: Sequence[tuple[dt.date, Decimal]]) -> None:
        deltas: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
        for deposit in deposits:
            deltas[deposit.date] += deposit.amount
        for d, amount in frozen_draws:
            deltas[d] -= amount
        self._dates = sorted(deltas)
        self._levels: list[Decimal] = []
        level = ZERO
        for d in self._dates:
            level += deltas[d]
            self._levels.append(level)
        # lowest level from index i to the end
        self._lowest_from = list(self._levels)
        for i in range(len(self._levels) - 2, -1, -1):
            self._lowest_from[i] = min(self._levels[i], self._lowest_from[i + 1])
        self.drawn = ZERO

    def headroom(self, d: dt.date) -> Decimal:
        i = bisect.bisect_right(self._dates, d) - 1
        lowest = self._lowest_from[i] if i >= 0 else ZERO
        if i < 0 and self._lowest_from:  # nothing deposited yet, later levels still bound the draw
            lowest = min(ZERO, self._lowest_from[0])
        return max(ZERO, lowest - self.drawn)

    def draw(self, amount: Decimal) -> None:
        self.drawn += amount


# ------------------------------------------------------------------------------------------ the layers


@dataclass
class _Context:
    agreements: list[Terms]  # sorted by start, key
    policy: Policy
    included: _Included
    blocks: _Blocks
    retainer: _Retainer
    block_moves: list[BlockMove] = field(default_factory=list)
    retainer_moves: list[RetainerMove] = field(default_factory=list)
    _active: dict[dt.date, list[Terms]] = field(default_factory=dict)
    _bounds: list[dt.date] | None = None  # the days on which the set of active agreements changes
    _routes: list[dict[str, _Route]] = field(default_factory=list)  # per stretch between two bounds

    def active(self, d: dt.date) -> list[Terms]:
        """Agreements active on `d`, by start then key (memoised: many entries share a date)."""
        found = self._active.get(d)
        if found is None:
            found = self._active[d] = [a for a in self.agreements if a.active_on(d)]
        return found

    def route(self, d: dt.date, work_type: str) -> _Route:
        """Which agreements the layers would pick for this work on `d`: a client's entries fall on hundreds of
        days but in a few stretches of the same active agreements, so each (stretch, work type) is decided once."""
        if self._bounds is None:
            ends = {a.end + dt.timedelta(days=1) for a in self.agreements if a.end is not None and a.end < dt.date.max}
            self._bounds = sorted({a.start for a in self.agreements} | ends)
            self._routes = [{} for _ in range(len(self._bounds) + 1)]
        routes = self._routes[bisect.bisect_right(self._bounds, d)]
        found = routes.get(work_type)
        if found is None:
            active = self.active(d)
            managed = [a for a in active if a.kind == "managed" and a.covers_work(work_type)]
            found = routes[work_type] = _Route(
                managed[0] if managed and managed[0].included_minutes else None,
                next((a for a in active if a.kind == "retainer" and a.hourly_rate is not None), None),
                _rate_among(work_type, active, self.policy),
                {},
            )
        return found


class _Route(NamedTuple):
    included: Terms | None  # the managed agreement whose included hours layer 1 takes
    retainer: Terms | None  # layer 3
    billable: tuple[Decimal, LineKind, str | None]  # layer 4: rate, line kind, agreement key
    amounts: dict[int, Decimal]  # layer 4: minutes -> minutes × rate ÷ 60, each worked out once


def _block_portions(work: Work, minutes: int, ctx: _Context) -> list[Portion]:
    portions = []
    for block_key, taken in ctx.blocks.draw(work.date, minutes):
        portions.append(Portion(work.key, work.date, "block", taken, block_key=block_key))
        ctx.block_moves.append(BlockMove(block_key, work.date, "deduction", -taken, work.key))
    return portions


def _retainer_portions(work: Work, minutes: int, agreement: Terms, ctx: _Context) -> list[Portion]:
    rate = agreement.hourly_rate or ZERO
    value = round_cents(rate * minutes / MINUTES_PER_HOUR)
    paid = min(ctx.retainer.headroom(work.date), value)
    ctx.retainer.draw(paid)
    if paid > 0:
        ctx.retainer_moves.append(RetainerMove(work.date, "deduction", -paid, work.key))
    # minutes follow the money; the floor leaves any part-minute with the billed shortfall
    covered = minutes if value == 0 else int(minutes * paid // value)
    portions = []
    if covered > 0 or paid > 0:
        portions.append(Portion(work.key, work.date, "retainer", covered, agreement_key=agreement.key,
                                rate=rate, amount=paid))
    if minutes - covered > 0 or value - paid > 0:
        portions.append(Portion(work.key, work.date, "billable", minutes - covered,
                                agreement_key=agreement.key, rate=rate, line_kind="retainer",
                                amount=value - paid))
    return portions


def billable_rate(work_type: str, d: dt.date, agreements: Iterable[Terms],
                  policy: Policy) -> tuple[Decimal, LineKind, str | None]:
    """Layer 4's rate: overage of a covering managed agreement, else an agreement's hourly rate, else the
    MSP's. Returns (rate, line kind, agreement key)."""
    return _rate_among(work_type, [a for a in _by_start(agreements) if a.active_on(d)], policy)


def _rate_among(work_type: str, active: Sequence[Terms], policy: Policy) -> tuple[Decimal, LineKind, str | None]:
    for a in active:
        if a.kind == "managed" and a.covers_work(work_type) and a.overage_rate is not None:
            return a.overage_rate, "overage", a.key
    for a in active:
        if a.hourly_rate is not None:
            return a.hourly_rate, "hourly", a.key
    return policy.hourly_rate, "hourly", None


_portion = tuple.__new__  # a Portion of all its fields, made in C: `Portion(...)` runs Python for each one


def _allocate_work(work: Work, ctx: _Context, portions: list[Portion]) -> None:
    # the hot loop of a billing run (a million entries): the layers' choices come decided from `ctx.route`,
    # and the portions are appended to the run's one list rather than returned in a list of their own
    left = round_up(work.minutes, ctx.policy.rounding_minutes)
    route = ctx.route(work.date, work.work_type)
    if route.included is not None and left > 0:
        taken = ctx.included.take(route.included, work.date, left)
        if taken:
            portions.append(Portion(work.key, work.date, "included", taken, agreement_key=route.included.key))
            left -= taken
    if ctx.blocks.oldest_first and left > 0:  # most clients hold no block
        for portion in _block_portions(work, left, ctx):
            portions.append(portion)
            left -= portion.minutes
    if left <= 0:
        return
    if route.retainer is not None:
        portions += _retainer_portions(work, left, route.retainer, ctx)
        return
    rate, kind, agreement_key = route.billable
    amount = route.amounts.get(left)
    if amount is None:
        amount = route.amounts[left] = rate * left / MINUTES_PER_HOUR
    portions.append(_portion(Portion, (work.key, work.date, "billable", left, None, agreement_key, rate, kind, amount)))


def _monitoring_month(agreement: Terms, first: dt.date, ctx: _Context) -> MonitoringMonth:
    needed = agreement.block_minutes_per_month or 0
    month = month_of(first)
    if ctx.blocks.available(first) < needed:
        return MonitoringMonth(agreement.key, month, first, paid_from_block=False)
    draws = tuple(ctx.blocks.draw(first, needed))
    for block_key, taken in draws:
        ctx.block_moves.append(BlockMove(block_key, first, "monitoring", -taken, f"{agreement.key}/{month}"))
    return MonitoringMonth(agreement.key, month, first, paid_from_block=True, draws=draws)


def monitoring_firsts(agreement: Terms, through: dt.date) -> list[dt.date]:
    """The 1sts on which a monitoring agreement's deduction is decided: within [start, end], not later than
    `through`, and after `billed_through` (months the former system billed were settled there)."""
    if agreement.kind != "monitoring" or not agreement.block_minutes_per_month:
        return []
    first = _first_on_or_after(agreement.start)
    if agreement.billed_through is not None:
        first = max(first, _first_on_or_after(agreement.billed_through + dt.timedelta(days=1)))
    last = through if agreement.end is None else min(through, agreement.end)
    firsts = []
    while first <= last:
        firsts.append(first)
        first = first_of_next_month(first)
    return firsts


# ------------------------------------------------------------------------------------------- allocate


def _frozen_consumption(
    portions: Iterable[Portion], months: Iterable[MonitoringMonth]
) -> tuple[dict[tuple[str, str], int], dict[str, int], list[tuple[dt.date, Decimal]]]:
    included: dict[tuple[str, str], int] = defaultdict(int)
    block_draws: dict[str, int] = defaultdict(int)
    retainer_draws: list[tuple[dt.date, Decimal]] = []
    for p in portions:
        if p.layer == "included" and p.agreement_key is not None:
            included[(p.agreement_key, month_of(p.date))] += p.minutes
        elif p.layer == "block" and p.block_key is not None:
            block_draws[p.block_key] += p.minutes
        elif p.layer == "retainer":
            retainer_draws.append((p.date, p.amount))
    for mm in months:
        for block_key, minutes in mm.draws:
            block_draws[block_key] += minutes
    return included, block_draws, retainer_draws


def _frozen_moves(portions: Iterable[Portion], months: Iterable[MonitoringMonth],
                  ) -> tuple[list[BlockMove], list[RetainerMove]]:
    block_moves: list[BlockMove] = []
    retainer_moves: list[RetainerMove] = []
    for p in portions:
        if p.layer == "block" and p.block_key is not None:
            block_moves.append(BlockMove(p.block_key, p.date, "deduction", -p.minutes, p.work_key))
        elif p.layer == "retainer" and p.amount:
            retainer_moves.append(RetainerMove(p.date, "deduction", -p.amount, p.work_key))
    for mm in months:
        for block_key, minutes in mm.draws:
            block_moves.append(BlockMove(block_key, mm.date, "monitoring", -minutes,
                                         f"{mm.agreement_key}/{mm.month}"))
    return block_moves, retainer_moves


def _purchase_moves(blocks: Iterable[PrepaidBlock]) -> list[BlockMove]:
    moves = []
    for b in blocks:
        moves.append(BlockMove(b.key, b.purchased, "purchase", b.minutes, b.key))
        if b.bonus_minutes:
            moves.append(BlockMove(b.key, b.purchased, "bonus", b.bonus_minutes, b.key))
    return moves


def _expiries(blocks: Iterable[PrepaidBlock], ctx: _Context, through: dt.date) -> list[Expiry]:
    # no draw is ever dated after a block's last day, so what is left at the end expired the day after
    expiries = []
    for b in blocks:
        if b.expires is None or b.expires + dt.timedelta(days=1) > through:
            continue
        left = max(0, ctx.blocks.headroom[b.key])
        ctx.blocks.headroom[b.key] -= left
        if left > 0:
            expiries.append(Expiry(b.key, b.expires + dt.timedelta(days=1), left))
            ctx.block_moves.append(BlockMove(b.key, b.expires + dt.timedelta(days=1), "expiry", -left, b.key))
    return expiries


def _months_due(agreements: Iterable[Terms], through: dt.date,
                frozen_months: Mapping[tuple[str, str], MonitoringMonth]) -> list[tuple[dt.date, str, str, Terms]]:
    """The monitoring months to decide, in the order they compete for blocks: by date, then by agreement."""
    due = []
    for a in agreements:
        for first in monitoring_firsts(a, through):
            if (a.key, month_of(first)) not in frozen_months:
                due.append((first, a.start.isoformat(), a.key, a))
    due.sort(key=lambda m: m[:3])
    return due


_KEY, _DATE = operator.itemgetter(0), operator.itemgetter(1)  # a Work's key, its date: in C


def _by_date_and_key(works: list[Work]) -> None:
    """Sort works by (date, key) in place: by key, then stably by date. Two sorts on one plain value each
    are faster than one on (date, key) tuples, a tuple made and compared for each of a million entries."""
    works.sort(key=_KEY)
    works.sort(key=_DATE)


def _move_order(m: BlockMove | RetainerMove) -> tuple[dt.date, int, str, str]:
    return (m.date, _MOVE_RANK[m.kind], m.ref, m.block_key if isinstance(m, BlockMove) else "")


def allocate(
    works: Iterable[Work],
    agreements: Iterable[Terms],
    blocks: Iterable[PrepaidBlock],
    deposits: Iterable[Deposit],
    policy: Policy,
    *,
    through: dt.date,
    frozen: Mapping[str, tuple[Portion, ...]] | None = None,
    frozen_monitoring: Mapping[tuple[str, str], MonitoringMonth] | None = None,
) -> Allocation:
    """Pay every minute of a client's work through the coverage layers, up to and including `through`.

    `frozen` (work key -> portions) and `frozen_monitoring` ((agreement key, YYYY-MM) -> month) are what
    issued invoices already counted: kept exactly, their consumption reserved before anything else.
    Anything dated after `through` is left out.
    """
    frozen = frozen or {}
    frozen_monitoring = frozen_monitoring or {}
    frozen_portions = [p for ps in frozen.values() for p in ps if p.date <= through]
    frozen_months = {k: mm for k, mm in frozen_monitoring.items() if mm.date <= through}
    live_blocks = [b for b in blocks if b.purchased <= through]
    live_deposits = [d for d in deposits if d.date <= through]
    live_works = [w for w in works if w.date <= through and w.key not in frozen]

    included, block_draws, retainer_draws = _frozen_consumption(frozen_portions, frozen_months.values())
    ctx = _Context(_by_start(agreements), policy, _Included(included), _Blocks(live_blocks, block_draws),
                   _Retainer(live_deposits, retainer_draws))
    ctx.block_moves, ctx.retainer_moves = _frozen_moves(frozen_portions, frozen_months.values())
    ctx.block_moves += _purchase_moves(live_blocks)
    ctx.retainer_moves += [RetainerMove(d.date, "deposit", d.amount, d.key) for d in live_deposits]

    portions = list(frozen_portions)
    months = list(frozen_months.values())
    # work and monitoring months in the order they compete for blocks: by date, a monitoring month on the 1st
    # before that day's work, work by key
    due = _months_due(ctx.agreements, through, frozen_months)
    _by_date_and_key(live_works)
    next_due = 0
    for work in live_works if due else ():
        while next_due < len(due) and due[next_due][0] <= work.date:
            months.append(_monitoring_month(due[next_due][3], due[next_due][0], ctx))
            next_due += 1
        _allocate_work(work, ctx, portions)
    for work in () if due else live_works:  # no monitoring month to decide: the common case
        _allocate_work(work, ctx, portions)
    for first, _, _, agreement in due[next_due:]:
        months.append(_monitoring_month(agreement, first, ctx))
    expiries = _expiries(live_blocks, ctx, through)
    return _result(portions, len(frozen_portions), months, expiries, live_blocks, ctx)


_BY_DATE_AND_WORK = operator.itemgetter(1, 0)  # a Portion's (date, work_key), in C: a run sorts a million


def _result(portions: list[Portion], frozen_count: int, months: list[MonitoringMonth], expiries: list[Expiry],
            blocks: Sequence[PrepaidBlock], ctx: _Context) -> Allocation:
    # a work's portions stay in layer order; works by (date, key); frozen portions keep their given order.
    # Live works were allocated in (date, key) order, so with nothing frozen before them (a first run, a
    # million portions) they are in order already.
    if frozen_count:
        portions.sort(key=_BY_DATE_AND_WORK)
    block_moves = tuple(sorted(ctx.block_moves, key=_move_order))
    retainer_moves = tuple(sorted(ctx.retainer_moves, key=_move_order))
    balances = {b.key: 0 for b in blocks}
    for m in block_moves:
        if m.block_key in balances:
            balances[m.block_key] += m.minutes
    return Allocation(
        portions=tuple(portions),
        monitoring=tuple(sorted(months, key=lambda mm: (mm.date, mm.agreement_key))),
        expiries=tuple(sorted(expiries, key=lambda e: (e.date, e.block_key))),
        block_balances=balances,
        retainer_balance=sum((m.amount for m in retainer_moves), ZERO),
        block_moves=block_moves,
        retainer_moves=retainer_moves,
    )


# ------------------------------------------------------------------------------------ balance notices


def burn_rate(usages: Iterable[tuple[dt.date, int]], as_of: dt.date, days: int = 90) -> Decimal:
    """Average minutes used per day over the `days` days ending on `as_of` (inclusive)."""
    since = as_of - dt.timedelta(days=days)
    used = sum(minutes for d, minutes in usages if since < d <= as_of)
    return Decimal(used) / Decimal(days)


def forecast_run_out(balance_minutes: int, burn_per_day: Decimal, as_of: dt.date) -> dt.date | None:
    """The day the balance reaches zero at this burn rate; None when nothing is burning."""
    if balance_minutes <= 0:
        return as_of
    if burn_per_day <= 0:
        return None
    days = (Decimal(balance_minutes) / burn_per_day).to_integral_value(rounding=ROUND_CEILING)
    return as_of + dt.timedelta(days=int(days))


def threshold_crossings(balance_series: Iterable[tuple[dt.date, int]],
                        threshold_minutes: int) -> list[tuple[dt.date, Notice]]:
    """One 'low' notice when the balance falls to or below the threshold, one 'zero' when it falls to zero.

    The series is the whole history (balance before it: zero). Only a fall sends a notice, so a purchase
    never does; a balance back above the threshold re-arms both notices.
    """
    notices: list[tuple[dt.date, Notice]] = []
    armed_low = armed_zero = True
    previous = 0
    for d, balance in balance_series:
        if balance > threshold_minutes:
            armed_low = armed_zero = True
        elif balance < previous:
            if armed_low:
                notices.append((d, "low"))
                armed_low = False
            if balance <= 0 and armed_zero:
                notices.append((d, "zero"))
                armed_zero = False
        previous = balance
    return notices

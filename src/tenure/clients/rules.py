"""A client's class as of a date: computed from its history, never typed in (DOMAIN.md, seed 004)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from dateutil.relativedelta import relativedelta


@dataclass(frozen=True, slots=True)
class FeeAgreement:
    start: date
    end: date | None
    monthly_fee: Decimal

    def active_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class ClassFacts:
    """What the class rule needs, each fact as of the date asked about."""

    offboarded_on: date | None  # the day a completed offboarding run ended service
    fee_agreements: tuple[FeeAgreement, ...]  # agreements of a fee-bearing kind
    prepaid_minutes: int  # unexpired block balance on the date
    retainer_balance: Decimal  # retainer money on the date
    invoice_dates: tuple[date, ...]
    first_activity: date | None  # the earliest dated record of any kind (agreement, block, time, invoice...)


def client_class(facts: ClassFacts, day: date) -> str:
    """DOMAIN.md's table, first rule that holds wins.

    A former client who signs a new agreement after its offboarding is a client again: the new agreement
    (one that starts after the offboarding) wins over `former`, as an owner counting returns would expect.
    """
    has_fee = any(a.monthly_fee > 0 and a.active_on(day) for a in facts.fee_agreements)
    if facts.offboarded_on is not None and facts.offboarded_on <= day:
        returned = any(
            a.monthly_fee > 0 and a.active_on(day) and a.start > facts.offboarded_on for a in facts.fee_agreements
        )
        if not returned:
            return "former"
    if has_fee:
        return "agreement"
    if facts.prepaid_minutes > 0 or facts.retainer_balance > 0:
        return "prepaid"
    year_before = day - relativedelta(months=12)
    if any(year_before < invoiced <= day for invoiced in facts.invoice_dates):
        return "adhoc"
    if facts.first_activity is not None and facts.first_activity <= day:
        return "lapsed"
    return "prospect"

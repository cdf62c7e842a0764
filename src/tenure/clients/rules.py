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


def is_former(offboarded_on: date | None, fee_agreements: tuple[FeeAgreement, ...], day: date) -> bool:
    """Offboarded on or before `day`, and not back under a fee agreement that started after the offboarding.
    (What triage needs of the class: only a former client's alerts are decided differently.)"""
    if offboarded_on is None or offboarded_on > day:
        return False
    return not any(a.monthly_fee > 0 and a.active_on(day) and a.start > offboarded_on for a in fee_agreements)


def client_class(facts: ClassFacts, day: date) -> str:
    """DOMAIN.md's table, first rule that holds wins.

    A former client who signs a new agreement after its offboarding is a client again: the new agreement
    (one that starts after the offboarding) wins over `former`, as an owner counting returns would expect.
    """
    if is_former(facts.offboarded_on, facts.fee_agreements, day):
        return "former"
    if any(a.monthly_fee > 0 and a.active_on(day) for a in facts.fee_agreements):
        return "agreement"
    if facts.prepaid_minutes > 0 or facts.retainer_balance > 0:
        return "prepaid"
    year_before = day - relativedelta(months=12)
    if any(year_before < invoiced <= day for invoiced in facts.invoice_dates):
        return "adhoc"
    if facts.first_activity is not None and facts.first_activity <= day:
        return "lapsed"
    return "prospect"


def host_key(hostname: str) -> str:
    """A hostname as alerts are matched by it: lower-case, without its domain (``ACME-DC01.acme.local`` and
    ``acme-dc01`` are the same machine to a technician, and to intake)."""
    return hostname.strip().lower().rstrip(".").split(".")[0]

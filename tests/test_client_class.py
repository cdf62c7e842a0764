"""A client's class as of a date (DOMAIN.md's table), as examples and as properties."""

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tenure.clients.rules import ClassFacts, FeeAgreement, client_class

D = date(2026, 11, 24)


def facts(**overrides):
    base = dict(
        offboarded_on=None,
        fee_agreements=(),
        prepaid_minutes=0,
        retainer_balance=Decimal("0.00"),
        invoice_dates=(),
        first_activity=None,
    )
    return ClassFacts(**(base | overrides))


def test_no_history_is_a_prospect():
    assert client_class(facts(), D) == "prospect"


def test_active_fee_agreement_is_agreement_even_with_prepaid_balance():
    f = facts(
        fee_agreements=(FeeAgreement(date(2026, 1, 1), None, Decimal("100.00")),),
        prepaid_minutes=600,
        first_activity=date(2026, 1, 1),
    )
    assert client_class(f, D) == "agreement"


def test_agreement_not_yet_started_or_ended_does_not_count():
    future = FeeAgreement(date(2026, 12, 1), None, Decimal("100.00"))
    ended = FeeAgreement(date(2025, 1, 1), date(2026, 10, 31), Decimal("100.00"))
    assert client_class(facts(fee_agreements=(future,)), D) == "prospect"
    assert client_class(facts(fee_agreements=(ended,), first_activity=date(2025, 1, 1)), D) == "lapsed"
    assert (
        client_class(facts(fee_agreements=(ended,), first_activity=date(2025, 1, 1)), date(2026, 10, 31)) == "agreement"
    )


def test_prepaid_balance_without_agreement():
    assert client_class(facts(prepaid_minutes=1, first_activity=D), D) == "prepaid"
    assert client_class(facts(retainer_balance=Decimal("0.01"), first_activity=D), D) == "prepaid"


def test_invoiced_within_twelve_months_is_adhoc_then_lapsed():
    invoiced = date(2026, 3, 10)
    f = facts(invoice_dates=(invoiced,), first_activity=invoiced)
    assert client_class(f, D) == "adhoc"
    assert client_class(f, date(2027, 3, 9)) == "adhoc"
    assert client_class(f, date(2027, 3, 10)) == "lapsed"  # exactly twelve months later: out of the window


def test_offboarded_client_is_former_until_it_signs_again():
    old = FeeAgreement(date(2025, 1, 1), date(2026, 9, 30), Decimal("900.00"))
    f = facts(offboarded_on=date(2026, 9, 30), fee_agreements=(old,), first_activity=date(2025, 1, 1))
    assert client_class(f, D) == "former"
    assert client_class(f, date(2026, 9, 29)) == "agreement"  # before its end of service
    returned = FeeAgreement(date(2026, 11, 1), None, Decimal("500.00"))
    assert client_class(facts(offboarded_on=date(2026, 9, 30), fee_agreements=(old, returned)), D) == "agreement"


days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def any_facts(draw):
    agreements = draw(
        st.lists(
            st.builds(
                lambda s, n, fee: FeeAgreement(s, None if n is None else s + timedelta(days=n), fee),
                days,
                st.one_of(st.none(), st.integers(0, 900)),
                st.decimals("0", "2000", places=2),
            ),
            max_size=3,
        )
    )
    return facts(
        offboarded_on=draw(st.one_of(st.none(), days)),
        fee_agreements=tuple(agreements),
        prepaid_minutes=draw(st.integers(0, 3000)),
        retainer_balance=draw(st.decimals("0", "5000", places=2)),
        invoice_dates=tuple(draw(st.lists(days, max_size=4))),
        first_activity=draw(st.one_of(st.none(), days)),
    )


@given(any_facts(), days)
def test_exactly_one_class_and_the_first_rule_that_holds_wins(f, day):
    klass = client_class(f, day)
    active = [a for a in f.fee_agreements if a.monthly_fee > 0 and a.start <= day and (a.end is None or day <= a.end)]
    if klass == "agreement":
        assert active
    if active and (f.offboarded_on is None or f.offboarded_on > day):
        assert klass == "agreement"
    if klass == "prepaid":
        assert not active and (f.prepaid_minutes > 0 or f.retainer_balance > 0)
    if klass == "prospect":
        assert f.first_activity is None or f.first_activity > day
        assert not active and f.prepaid_minutes == 0 and f.retainer_balance == 0


@given(any_facts(), days)
def test_offboarding_only_ever_makes_a_client_former_or_leaves_it_returned(f, day):
    klass = client_class(f, day)
    if f.offboarded_on is not None and f.offboarded_on <= day:
        assert klass in ("former", "agreement")
    else:
        assert klass != "former"

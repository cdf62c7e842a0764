"""The desk's mail rules: `[#N]` in subjects, a quote's price and description, the reply a note keeps,
automatic answers, and what a known contact's new mail opens."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenure.desk.mail import rules


@given(st.integers(min_value=1, max_value=10**12 - 1), st.text(max_size=80).filter(lambda t: "[#" not in t))
def test_a_ticket_subject_names_its_ticket_and_a_reply_finds_it(number: int, text: str) -> None:
    subject = rules.ticket_subject(number, text)
    assert f"[#{number}]" in subject and "\n" not in subject
    # however the client's mail program prefixes it, the reply names the same ticket
    assert rules.ticket_ref(f"Re: AW: {subject}") == number


def test_ticket_subject_and_ref() -> None:
    assert rules.ticket_subject(12, "Quote: new  laptop") == "[#12] Quote: new laptop"
    assert rules.ticket_subject(12, "Re: [#12] Quote") == "Re: [#12] Quote"  # already says so: unchanged
    assert rules.ticket_ref("RE: [#12] Quote for your approval") == 12
    assert rules.ticket_ref("Invoice #12 [12]") is None and rules.ticket_ref(None) is None


def test_a_quote_needs_a_price_above_zero_with_cents_and_a_description() -> None:
    assert rules.check_quote("150", " Replace the  fan ") == rules.Quote(Decimal("150.00"), "Replace the fan")
    assert rules.check_amount(Decimal("99.5")) == Decimal("99.50")
    for bad, says in (
        ("0", "more than zero"),
        ("-5", "more than zero"),
        ("12.345", "two decimals"),
        ("ten", "not a number"),
        ("NaN", "more than zero"),
        ("20000000", "more than"),
        (None, "give the price"),
    ):
        with pytest.raises(rules.QuoteError, match=says) as found:
            rules.check_amount(bad)
        assert str(found.value).startswith("amount:")
    with pytest.raises(rules.QuoteError, match=r"^description:"):
        rules.check_quote("10", "   ")


def test_triage_quotes_one_hour_at_the_rate_half_up() -> None:
    assert rules.triage_quote_price(Decimal("150.00")) == Decimal("150.00")
    assert rules.triage_quote_price(Decimal("127.255"), 60) == Decimal("127.26")
    assert rules.triage_quote_price(Decimal("100"), 45) == Decimal("75.00")


def test_the_note_keeps_what_the_client_wrote_not_the_quoted_conversation() -> None:
    body = "Yes, go ahead.\nThanks!\n\nOn Tue, 1 Dec 2026 at 10:00, Example IT <it@x.example> wrote:\n> Before we…\n"
    assert rules.reply_text(body) == "Yes, go ahead.\nThanks!"
    assert rules.reply_text("Fine\n\n-----Original Message-----\nFrom: it@x.example\n") == "Fine"
    assert rules.reply_text("Fine\n-- \nDee, Dune Dental\n") == "Fine"
    assert rules.reply_text("> only quoted\n> text") == "> only quoted\n> text"  # nothing above: all of it


def test_automatic_answers_are_recognised() -> None:
    assert rules.is_auto_reply({"Auto-Submitted": "auto-replied"})
    assert rules.is_auto_reply({"Precedence": "bulk"}) and rules.is_auto_reply({"X-Autoreply": "yes"})
    assert not rules.is_auto_reply({"Auto-Submitted": "no", "Subject": "Re: [#4] hi"})


def test_a_known_contacts_mail_is_never_suppressed_or_forwarded_back() -> None:
    assert rules.mail_ticket("ticket") == ("ticket", False)  # covered: the agreement pays
    assert rules.mail_ticket("quote") == ("quote", True)  # opted in to billable work: quoted first
    for decision in ("suppress", "forward", "orphaned"):
        assert rules.mail_ticket(decision) == ("ticket", True)  # a person asked: billable work

"""Rules of the desk's mail (DOMAIN.md "The service desk", INTERFACE.md "Tickets", "Mail out").

Pure: no database, no clock, no I/O.

- Every mail about a ticket carries ``[#N]`` in its subject (`ticket_subject`); a client's reply keeps it,
  and `ticket_ref` reads it back.
- A quote has a price (money, more than zero, at most two decimals) and a description (`check_quote`).
  Triage's quote asks for one hour of work at the client's hourly rate (seed 004: "an initial one hour pre
  approval of labor"): `triage_quote_price`.
- A client's mail that opens a ticket is decided by its coverage like an alert, for the service a person's
  request is about (`MAIL_SERVICE`); `mail_ticket` says what kind of ticket follows from triage's decision.
- Of a reply, the note keeps what the client wrote, not the quoted conversation below it (`reply_text`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

TICKET_REF = re.compile(r"\[#(\d{1,12})\]")
MAIL_SERVICE = "remote_support"
TRIAGE_QUOTE_MINUTES = 60
MAX_AMOUNT = Decimal("10000000")
MAX_DESCRIPTION = 2000
MAX_NOTE = 20000
CENT = Decimal("0.01")
ANSWERS: tuple[str, ...] = ("approved", "declined")


class QuoteError(ValueError):
    """A quote that cannot be sent as given; the message names the field."""


def ticket_subject(ticket: int, text: str) -> str:
    """`[#N] text`: the subject of every mail about ticket N (kept as it is when it already says so)."""
    tag = f"[#{ticket}]"
    text = " ".join(text.split())
    return text if tag in text else f"{tag} {text}".strip()


def ticket_ref(subject: str | None) -> int | None:
    """The ticket number a subject names with ``[#N]`` (the first one), or None."""
    found = TICKET_REF.search(subject or "")
    return int(found.group(1)) if found else None


def check_amount(value: object) -> Decimal:
    """A quote's price as Decimal with two places; QuoteError naming `amount` otherwise."""
    if isinstance(value, bool) or value is None:
        raise QuoteError("amount: give the price, e.g. 150.00")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise QuoteError(f"amount: {value!r} is not a number (e.g. 150.00)") from None
    if not amount.is_finite() or amount <= 0:
        raise QuoteError(f"amount: {value!r} must be more than zero")
    if amount != amount.quantize(CENT):
        raise QuoteError(f"amount: {value!r} has more than two decimals")
    if amount > MAX_AMOUNT:
        raise QuoteError(f"amount: {value!r} is more than {MAX_AMOUNT}")
    return amount.quantize(CENT)


def check_description(value: object) -> str:
    text = " ".join(str(value or "").split())
    if not text:
        raise QuoteError("description: say what the work is (it is in the mail the client approves)")
    if len(text) > MAX_DESCRIPTION:
        raise QuoteError(f"description: at most {MAX_DESCRIPTION} characters, not {len(text)}")
    return text


@dataclass(frozen=True, slots=True)
class Quote:
    amount: Decimal
    description: str


def check_quote(amount: object, description: object) -> Quote:
    return Quote(check_amount(amount), check_description(description))


def triage_quote_price(hourly_rate: Decimal, minutes: int = TRIAGE_QUOTE_MINUTES) -> Decimal:
    """The price of `minutes` of work at `hourly_rate`, half-up to the cent once."""
    return (hourly_rate * minutes / 60).quantize(CENT, rounding=ROUND_HALF_UP)


def mail_ticket(decision: str) -> tuple[str, bool]:
    """What a known contact's new mail opens, from triage's decision for `MAIL_SERVICE`: (``ticket`` or
    ``quote``, billable).

    Covered: a ticket the agreement pays. Not covered and opted in to billable work: a quote the client
    approves first. Otherwise a person still asked: a ticket, billable by the coverage layers (a block or a
    retainer pays it, else it is billed by the hour). A mail is never suppressed or forwarded back.
    """
    if decision == "ticket":
        return "ticket", False
    if decision == "quote":
        return "quote", True
    return "ticket", True


_QUOTE_HEADER = re.compile(
    r"^(on\s.{0,200}wrote:|-{2,}\s*original message\s*-{2,}|from:\s.+@|_{10,})\s*$", re.IGNORECASE
)


def reply_text(body: str) -> str:
    """What the client wrote in a reply: the text above the quoted conversation ("On … wrote:", an
    "Original Message" line, lines starting with ">") and above a signature ("-- "), trimmed; the whole
    text when nothing is above it."""
    kept: list[str] = []
    for line in body.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped.startswith(">") or _QUOTE_HEADER.match(stripped) or line.rstrip() == "--":
            break
        kept.append(line.rstrip())
    text = "\n".join(kept).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    return (text or body.strip())[:MAX_NOTE]


def is_auto_reply(headers: Mapping[str, str]) -> bool:
    """An automatic answer (an out-of-office, a bounce): it must not move a ticket (RFC 3834)."""
    lowered = {k.lower(): (v or "").strip().lower() for k, v in headers.items()}
    auto = lowered.get("auto-submitted", "no")
    if auto and auto != "no":
        return True
    if lowered.get("precedence") in ("auto_reply", "bulk", "junk", "list"):
        return True
    return "x-autoreply" in lowered or "x-autorespond" in lowered

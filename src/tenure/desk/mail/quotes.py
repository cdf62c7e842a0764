"""Quotes out (DOMAIN.md "The service desk", INTERFACE.md "Mail out"): a price the client approves or
declines with a signed link, without an account.

A quote is a notice of kind `quote` to the client's `primary` contact (notices.service ROLES_FOR), its
subject `[#N] …`, its data the ticket, price and description; the outbox signs its Approve and Decline links
when it sends it (`quote_links`, called from `outbox.prepare`), each naming the quote and who it went to
(the link's signer). Two ways in:

- a technician writes one on any ticket that is not closed (`write_quote`: CLI, API, the ticket's page): the
  ticket waits in `awaiting_approval`, an internal note says what was quoted;
- triage's `quote` decision (`triage_quotes`, from intake's recording): one hour of work at the client's
  hourly rate (seed 004), for the alert's ticket.

The answer (`answer_quote`, from the link's page after a confirming POST) is recorded once: a `quote_answer`
notice to staff whose dedupe key is the quote's is the guard, so a second click, or two at once, finds the
first answer and says what it was. Approve makes the ticket billable and `in_progress`; Decline closes it;
both leave a public note on the ticket with the time and the signer. A quote superseded by a newer one on
the same ticket, or whose ticket was settled otherwise meanwhile, answers nothing and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenure import clock
from tenure.agreements.models import Agreement
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.db.members import one_of
from tenure.desk import service as desk
from tenure.desk.mail import rules
from tenure.errors import NotFound, TenureError
from tenure.notices import links
from tenure.notices.models import Notice
from tenure.notices.render import money
from tenure.notices.service import addresses, msp_of
from tenure.triage.models import Ticket

KIND = "quote"
ANSWER_KIND = "quote_answer"


def _key_prefix(ticket: int) -> str:
    return f"quote:{ticket}:"


def _answer_key(quote_key: str) -> str:
    return f"{quote_key}:answer"


def _quotes_of(s: Session, ticket: int) -> list[Notice]:
    """The ticket's quotes, oldest first (a range over the unique dedupe key: its index answers it)."""
    prefix = _key_prefix(ticket)
    upper = prefix[:-1] + ";"  # ':' + 1: every key that starts with the prefix sorts before it
    query = (
        select(Notice)
        .where(Notice.dedupe_key >= prefix, Notice.dedupe_key < upper, Notice.kind == KIND)
        .order_by(Notice.id)
    )
    return list(s.scalars(query))


def _hourly_rates(s: Session, client_ids: list[int], day: date, default: Decimal) -> dict[int, Decimal]:
    """The rate each client's uncovered work is billed at: its earliest active agreement with an hourly
    rate (billing's layer 4 for work no agreement covers), else the MSP's."""
    rates: dict[int, Decimal] = {}
    for cid, rate, start, end in s.execute(
        select(Agreement.client_id, Agreement.hourly_rate, Agreement.start, Agreement.end)
        .where(one_of(s, Agreement.client_id, client_ids), Agreement.hourly_rate.is_not(None))
        .order_by(Agreement.start, Agreement.id)
    ):
        if cid not in rates and start <= day and (end is None or day <= end):
            rates[cid] = Decimal(rate)
    return {cid: rates.get(cid, default) for cid in client_ids}


def _notice_values(
    ticket: int,
    client_id: int,
    title: str,
    quote: rules.Quote,
    author: str,
    now: datetime,
    currency: str,
    to: list[str],
    seq: int,
    basis: str | None = None,
) -> dict[str, Any]:
    """The row of a quote's notice, waiting in the outbox (its links are signed when it is sent)."""
    return {
        "client_id": client_id,
        "kind": KIND,
        "dedupe_key": f"{_key_prefix(ticket)}{seq}",
        "to": to,
        "cc": [],
        "subject": rules.ticket_subject(ticket, f"Quote for your approval: {title}")[:300],
        "body_text": f"{quote.description}: {money(quote.amount, currency)}",
        "body_html": None,  # rendered by the outbox from quote.txt / quote.html, with the signed links
        "data": {
            "ticket": ticket,
            "title": title,
            "amount": str(quote.amount),
            "currency": currency,
            "description": quote.description,
            "basis": basis,
            "author": author,
            "signer": ", ".join(to),
            "audience": ["client"],
        },
        "state": "waiting" if to else "kept",
        "error": None if to else "the client has no contact with an e-mail address: kept on record, not sent",
        "attempts": 0,
        "created_at": now,
    }


def record_quote(s: Session, ticket: Ticket, quote: rules.Quote, author: str, now: datetime) -> Notice:
    """A quote on the ticket, to the client's primary contact (a newer quote supersedes the older ones)."""
    to = addresses(s, [ticket.client_id], "quote").get(ticket.client_id, [])
    seq = len(_quotes_of(s, ticket.id)) + 1
    values = _notice_values(
        ticket.id, ticket.client_id, ticket.title, quote, author, now, msp_of(s).currency, to, seq
    )
    notice = Notice(**values)
    s.add(notice)
    s.flush()
    return notice


def quote_links(notice: Notice) -> dict[str, str]:
    """The signed Approve and Decline links of a quote notice (the outbox adds them when it sends it)."""
    signer = (notice.data or {}).get("signer") or ", ".join(notice.to or [])
    return {
        answer: links.link_url({"k": "q", "q": notice.id, "a": answer, "s": signer})
        for answer in ("approve", "decline")
    }


def _quote_json(notice: Notice, ticket: Ticket) -> dict[str, Any]:
    data = notice.data or {}
    return {
        "ticket": ticket.id,
        "quote": notice.id,
        "status": ticket.status,
        "amount": data.get("amount"),
        "description": data.get("description"),
        "to": list(notice.to or []),
        "state": notice.state,
        "subject": notice.subject,
    }


def write_quote(db: Database, n: int, amount: object, description: object, author: str | None = None) -> dict[str, Any]:
    """A technician's quote on ticket N: mailed to the client's primary contact; the ticket awaits approval."""
    try:
        quote = rules.check_quote(amount, description)
    except rules.QuoteError as exc:
        raise TenureError(str(exc)) from None
    with db.unit_of_work() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.id == n).with_for_update()).first()
        if ticket is None:
            raise NotFound(f"no ticket #{n} (see `tenure ticket list`)")
        if ticket.status == "closed":
            raise TenureError(f"ticket #{n} is closed: reopen it before quoting work on it")
        now = clock.now()
        who = desk._author(author)
        if ticket.status != "awaiting_approval":
            desk.change_status_in(s, ticket, "awaiting_approval", now)
        notice = record_quote(s, ticket, quote, who, now)
        msp = msp_of(s)
        sent_to = ", ".join(notice.to) or "nobody (no contact with an e-mail address)"
        desk.add_note_in(
            s,
            ticket,
            f"Quote sent to {sent_to}: {money(quote.amount, msp.currency)} for {quote.description}",
            public=False,
            author=who,
            at=now,
        )
        return _quote_json(notice, ticket)


def triage_quotes(s: Session, tickets: list[tuple[int, int, str]], now: datetime) -> list[dict[str, Any]]:
    """The quote notices of tickets triage just opened with a `quote` decision, (ticket id, client id,
    title) each, as rows for one bulk insert: one hour of work at the client's hourly rate (seed 004), to the
    client's primary contact. A few queries for the whole batch."""
    if not tickets:
        return []
    msp = msp_of(s)
    clients = sorted({cid for _, cid, _ in tickets})
    to = addresses(s, clients, "quote")
    rates = _hourly_rates(s, clients, now.date(), Decimal(msp.hourly_rate))
    rows = []
    for tid, cid, title in tickets:
        rate = rates[cid]
        quote = rules.Quote(rules.triage_quote_price(rate), rules.check_description(f"Look into and fix: {title}"))
        basis = f"{rules.TRIAGE_QUOTE_MINUTES} minutes at {money(rate, msp.currency)} an hour"
        rows.append(_notice_values(tid, cid, title, quote, "triage", now, msp.currency, to.get(cid, []), 1, basis))
    return rows


# ------------------------------------------------------------------------------------------ answers


@dataclass(frozen=True)
class QuoteView:
    """A quote as its link's page shows it."""

    notice: int
    ticket: int
    title: str
    client_name: str
    msp_name: str
    amount: str
    currency: str
    description: str
    ticket_status: str
    answer: str | None = None  # approved | declined
    answered_at: datetime | None = None
    answered_by: str | None = None
    superseded: bool = False


def _view(s: Session, notice: Notice) -> QuoteView | None:
    data = notice.data or {}
    ticket = s.get(Ticket, int(data.get("ticket") or 0))
    if ticket is None:
        return None
    client = s.get(Client, ticket.client_id)
    answer = s.scalars(select(Notice).where(Notice.dedupe_key == _answer_key(notice.dedupe_key))).first()
    latest = _quotes_of(s, ticket.id)[-1:]
    answered = (answer.data or {}) if answer is not None else {}
    return QuoteView(
        notice=notice.id,
        ticket=ticket.id,
        title=str(data.get("title") or ticket.title),
        client_name=client.name if client else "",
        msp_name=msp_of(s).name,
        amount=str(data.get("amount")),
        currency=str(data.get("currency") or "USD"),
        description=str(data.get("description") or ""),
        ticket_status=ticket.status,
        answer=answered.get("answer"),
        answered_at=datetime.fromisoformat(answered["answered_at"]) if answered.get("answered_at") else None,
        answered_by=answered.get("signer"),
        superseded=bool(latest) and latest[0].id != notice.id,
    )


def quote_view(db: Database, notice_id: int) -> QuoteView | None:
    with db.reader() as s:
        notice = s.get(Notice, notice_id)
        if notice is None or notice.kind != KIND:
            return None
        return _view(s, notice)


def answer_quote(
    db: Database, notice_id: int, answer: str, signer: str, note: str | None = None
) -> tuple[bool, QuoteView | None]:
    """Record the client's answer (`approved` or `declined`) once. (recorded, the quote as it now stands);
    not recorded: answered before, superseded, or its ticket settled otherwise (the view says which)."""
    if answer not in rules.ANSWERS:
        raise TenureError(f"answer {answer!r} is not one of {', '.join(rules.ANSWERS)}")
    note = " ".join((note or "").split())[:900] or None
    try:
        with db.unit_of_work() as s:
            notice = s.get(Notice, notice_id)
            if notice is None or notice.kind != KIND:
                return False, None
            ticket_id = int((notice.data or {}).get("ticket") or 0)
            ticket = s.scalars(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()
            view = _view(s, notice)
            if ticket is None or view is None:
                return False, None
            if view.answer is not None or view.superseded or ticket.status != "awaiting_approval":
                return False, view
            now = clock.now()
            _record_answer(s, notice, ticket, answer, signer, note, now)
            return True, _view(s, notice)
    except IntegrityError:  # the other link, or the same one, answered at the same moment: it won
        return False, quote_view(db, notice_id)


def _record_answer(
    s: Session, notice: Notice, ticket: Ticket, answer: str, signer: str, note: str | None, now: datetime
) -> None:
    data = notice.data or {}
    msp = msp_of(s)
    price = money(data.get("amount"), str(data.get("currency") or msp.currency))
    # the guard first: a second answer to this quote fails here, before anything else is written
    s.add(
        Notice(
            client_id=notice.client_id,
            kind=ANSWER_KIND,
            dedupe_key=_answer_key(notice.dedupe_key),
            to=[],
            cc=[],
            subject=rules.ticket_subject(ticket.id, f"Quote {answer} by {signer}: {ticket.title}")[:300],
            body_text=f"{signer} {answer} the quote of {price} ({data.get('description')}).",
            body_html=None,
            data={
                "ticket": ticket.id,
                "title": ticket.title,
                "quote": notice.id,
                "amount": data.get("amount"),
                "currency": data.get("currency"),
                "description": data.get("description"),
                "answer": answer,
                "signer": signer,
                "answered_at": now.isoformat(),
                "note": note,
                "audience": ["staff"],
            },
            state="waiting",
            attempts=0,
            created_at=now,
        )
    )
    s.flush()
    when = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"Quote {answer} by {signer} on {when} with the signed link: {price} for {data.get('description')}."
        + (f" Their note: {note}" if note else "")
    )
    desk.add_note_in(s, ticket, text, public=True, author=signer, at=now)
    if answer == "approved":
        desk.change_status_in(s, ticket, "in_progress", now)
        ticket.billable = True
    else:
        desk.close_ticket_in(s, ticket, now)
    s.flush()

"""Mail in, on the ticket (DOMAIN.md "The service desk", INTERFACE.md "Tickets"): a person's mail to the
intake address, taken out of an intake batch before triage turns it into an alert.

Only a mail from someone Tenure knows is a person's: a contact's address (any client's contacts). Backup
products' notices are never taken (they were read as backup results already), nor mail to a per-client
alert address (`alerts+<client>@…`: that is a tool's), nor mail from several clients' shared address that
names no ticket of theirs. What is taken:

- a reply naming a ticket (`[#N]` in the subject) of the sender's client (or from the client's own mail
  domain) becomes a public note on it, authored by the sender, with the text above the quoted
  conversation; a ticket waiting on the client (or resolved) moves to `in_progress`. An automatic answer
  (out of office) is kept as an internal note and moves nothing; a closed ticket keeps its status;
- any other mail from a known contact opens a ticket for that contact's client (kind `request`), decided
  by its coverage like an alert for `remote_support` (`desk.mail.rules.mail_ticket`): covered, a ticket;
  not covered and opted in to billable work, a quote awaiting approval (mailed with its links, as triage's
  quotes are); otherwise a billable ticket, paid as the coverage layers say. The sender gets an
  acknowledgement carrying `[#N]`, so replies land on the ticket.

Mail from nobody known goes on through triage as before: matched by a mapping rule or a domain, or to the
quarantine.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from html import unescape
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from tenure.clients.models import Client, Contact
from tenure.desk import service as desk
from tenure.desk.mail import rules
from tenure.desk.mail.quotes import triage_quotes
from tenure.intake.matching import MatchIndex
from tenure.intake.sources import Signal
from tenure.msp.models import MspSettings
from tenure.notices.models import Notice
from tenure.text import header_safe
from tenure.triage.models import Ticket


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """What became of a person's mail: the ticket it landed on (`decision` `ticket` or `quote`)."""

    payload: int
    client: str
    ticket: int
    decision: str
    reason: str
    fingerprint: str
    status: str


def _message(body: bytes) -> EmailMessage:
    message = email.message_from_bytes(body, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = str(part.get_content())
    except (LookupError, ValueError):
        return ""
    if part.get_content_type() == "text/html":
        text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
        text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)
        text = unescape(re.sub(r"<[^>]+>", "", text))
    return text.replace("\x00", "")


def _alert_address(msp_intake: str | None) -> re.Pattern[str] | None:
    """The per-client alert addresses of the MSP's intake address (`alerts+<client>@domain`)."""
    if not msp_intake or "@" not in msp_intake:
        return None
    local, _, domain = msp_intake.lower().partition("@")
    return re.compile(rf"^{re.escape(local)}\+[^@]+@{re.escape(domain)}$")


def _contacts(s: Session, senders: Sequence[str]) -> dict[str, list[int]]:
    """The clients whose contacts have each of these addresses (lower-case)."""
    found: dict[str, list[int]] = defaultdict(list)
    for i in range(0, len(senders), 500):
        chunk = list(senders[i : i + 500])
        for cid, address in s.execute(
            select(Contact.client_id, func.lower(Contact.email)).where(func.lower(Contact.email).in_(chunk))
        ):
            if cid not in found[address]:
                found[address].append(cid)
    return found


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].rstrip(".")


def take_client_mail(
    s: Session, index: MatchIndex, parsed: list[tuple[Any, Signal]], now: datetime
) -> tuple[list[tuple[Any, Signal]], list[MailOutcome]]:
    """Split an intake batch's signals: (those triage goes on with, what people's mail became)."""
    candidates = [
        (row, signal)
        for row, signal in parsed
        if row.source == "email" and signal.kind == "alert" and signal.sender and "@" in signal.sender
    ]
    if not candidates:
        return parsed, []
    known = _contacts(s, sorted({signal.sender.lower() for _, signal in candidates if signal.sender}))
    if not known:
        return parsed, []
    alert_address = _alert_address(s.scalar(select(MspSettings.intake_address).limit(1)))
    taken: dict[tuple[int, int], MailOutcome] = {}
    for row, signal in candidates:
        sender = (signal.sender or "").lower()
        clients = known.get(sender)
        if not clients:
            continue
        recipients = [r.strip().lower() for r in (signal.recipient or "").split(",") if r.strip()]
        if alert_address is not None and any(alert_address.match(r) for r in recipients):
            continue  # a tool sending from a contact's address to the per-client alert address: an alert
        outcome = _take(s, index, row, signal, sender, clients, now)
        if outcome is not None:
            taken[(row.id, id(signal))] = outcome
    if not taken:
        return parsed, []
    rest = [(row, signal) for row, signal in parsed if (row.id, id(signal)) not in taken]
    return rest, list(taken.values())


def _take(
    s: Session,
    index: MatchIndex,
    row: Any,
    signal: Signal,
    sender: str,
    clients: list[int],
    now: datetime,
) -> MailOutcome | None:
    message = _message(row.body)
    subject = " ".join(header_safe(str(message.get("Subject", ""))).split())
    number = rules.ticket_ref(subject)
    if number is not None:
        ticket = s.scalars(select(Ticket).where(Ticket.id == number).with_for_update()).first()
        if ticket is not None and _may_reply(s, ticket, sender, clients):
            return _reply(s, row, signal, message, ticket, sender, now)
    if len(clients) != 1:
        return None  # an address several clients share, naming no ticket of theirs: triage as before
    return _new_ticket(s, index, row, signal, message, subject, sender, clients[0], now)


def _may_reply(s: Session, ticket: Ticket, sender: str, clients: list[int]) -> bool:
    """A reply lands on a ticket of the sender's own client, or of a client whose mail domain it has."""
    if ticket.client_id in clients:
        return True
    domains = s.scalar(select(Client.domains).where(Client.id == ticket.client_id)) or []
    domain = _domain_of(sender)
    return any(domain == d.lower() or domain.endswith("." + d.lower()) for d in domains)


def _client_key(s: Session, client_id: int) -> str:
    return str(s.scalar(select(Client.key).where(Client.id == client_id)))


def _reply(
    s: Session, row: Any, signal: Signal, message: EmailMessage, ticket: Ticket, sender: str, now: datetime
) -> MailOutcome:
    text = rules.reply_text(_text(message)) or "(an empty reply)"
    auto = rules.is_auto_reply({k: str(v) for k, v in message.items()})
    key = _client_key(s, ticket.client_id)
    if auto:
        desk.add_note_in(s, ticket, f"Automatic answer from {sender}: {text}", public=False, author=sender, at=now)
        reason = f"An automatic answer from {sender} to ticket #{ticket.id}: kept as an internal note."
        return MailOutcome(row.id, key, ticket.id, "ticket", reason, signal.fingerprint, signal.status)
    desk.add_note_in(s, ticket, text, public=True, author=sender, at=now)
    was = ticket.status
    if was in ("waiting_on_client", "resolved"):
        desk.change_status_in(s, ticket, "in_progress", now)
    moved = f"; it moved from {was} to in_progress" if ticket.status != was else f"; it stays {was}"
    reason = f"A reply from {sender} to ticket #{ticket.id}: added as a public note{moved}."
    return MailOutcome(row.id, key, ticket.id, "ticket", reason, signal.fingerprint, signal.status)


def _new_ticket(
    s: Session,
    index: MatchIndex,
    row: Any,
    signal: Signal,
    message: EmailMessage,
    subject: str,
    sender: str,
    client_id: int,
    now: datetime,
) -> MailOutcome:
    key = _client_key(s, client_id)
    facts = index.facts(key)
    decision = facts.decide(now.date(), rules.MAIL_SERVICE, "alert", True, None)
    made, billable = rules.mail_ticket(decision.decision)
    title = subject or f"Mail from {sender}"
    text = rules.reply_text(_text(message))
    ticket = desk.open_ticket_in(
        s,
        client_id,
        title[:480],
        kind="request",
        description=f"From {sender}:\n\n{text}" if text else f"From {sender} (no text).",
        billable=billable,
        status="awaiting_approval" if made == "quote" else "new",
        now=now,
    )
    if made == "quote":
        s.execute(insert(Notice), triage_quotes(s, [(ticket.id, client_id, ticket.title)], now))
        how = "no agreement covers it and the client opted in to billable work: a quote went to its primary contact"
    else:
        s.execute(insert(Notice), [_acknowledgement(ticket, client_id, sender, now)])
        how = (
            decision.reason
            if decision.decision == "ticket"
            else "no agreement covers it: billable, paid as the coverage layers say (a block or retainer first)"
        )
    reason = f"A mail from {sender}, a contact of {facts.name}, opened ticket #{ticket.id}: {how}"
    return MailOutcome(row.id, key, ticket.id, made, reason[:480], signal.fingerprint, signal.status)


def _acknowledgement(ticket: Ticket, client_id: int, sender: str, now: datetime) -> dict[str, Any]:
    """The answer to a new request: its number, so replies land on the ticket."""
    return {
        "client_id": client_id,
        "kind": "ticket_opened",
        "dedupe_key": f"ticket-opened:{ticket.id}",
        "to": [sender],
        "cc": [],
        "subject": rules.ticket_subject(ticket.id, f"We received your request: {ticket.title}")[:300],
        "body_text": (
            f"We received your request and opened ticket #{ticket.id} for it: {ticket.title}.\n\n"
            f"Reply to this message (keep [#{ticket.id}] in the subject) to add to it."
        ),
        "body_html": None,
        "data": {"ticket": ticket.id, "title": ticket.title, "audience": ["client"]},
        "state": "waiting",
        "attempts": 0,
        "created_at": now,
    }

"""Quotes out and mail in, on the ticket (issue 18): a quote (triage's or a technician's) goes to the client's
primary contact with signed Approve / Decline links that work once; a known contact's reply lands on its
ticket as a note, a new mail from a known contact opens a ticket by its coverage, mail from nobody known
waits in quarantine."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenure import clock
from tenure.accounts import users
from tenure.accounts.users import create_user, log_in
from tenure.api.app import create_app
from tenure.book.service import import_book
from tenure.desk import service as desk
from tenure.desk.mail.quotes import write_quote
from tenure.errors import NotFound, TenureError
from tenure.intake import service as intake
from tenure.notices import outbox, pages
from tenure.notices.models import Notice
from tenure.web.routes import SESSION_COOKIE
from tests.books import small

NOW = "2026-11-24T15:00:00Z"


@pytest.fixture
def world(db, monkeypatch):
    """small()'s acme (managed: covers remote_support) and a dental practice with no agreement that covers
    anything, opted in to billable alerts."""
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    clock.set_now("2026-11-20T15:00:00Z")
    book = small()
    book["clients"].append(
        {
            "key": "dune",
            "name": "Dune Dental",
            "domains": ["dune.example"],
            "billable_alerts": True,
            "contacts": [
                {"name": "Dee", "email": "Dee@dune.example", "roles": ["primary"]},
                {"name": "Books", "email": "books@dune.example", "roles": ["billing"]},
            ],
            "agreements": [{"key": "dune-adhoc", "kind": "adhoc", "start": "2026-01-01", "hourly_rate": "127.50"}],
        }
    )
    import_book(db, book)
    clock.set_now(NOW)
    return db


def notices(db, kind: str) -> list[Notice]:
    with db.reader() as s:
        return list(s.scalars(select(Notice).where(Notice.kind == kind).order_by(Notice.id)))


def links_of(db, notice: Notice) -> dict[str, str]:
    """The signed links the outbox puts in the quote's mail, as tokens."""
    with db.reader() as s:
        prepared = outbox.prepare(s, s.get(Notice, notice.id))
    assert "Approve:" in prepared["body_text"] and "Decline:" in prepared["body_text"]
    return {k: url.rsplit("/n/", 1)[1] for k, url in prepared["data"]["links"].items()}


def mail(sender: str, subject: str, text: str, **headers: str) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, "alerts@example-it.example", subject
    for name, value in headers.items():
        m[name.replace("_", "-")] = value
    m.set_content(text)
    return bytes(m)


# ------------------------------------------------------------------------------------------ quotes out


def test_triage_quote_goes_to_the_primary_contact_and_approve_works_once(world):
    event = {"source": "probe", "client": "dune", "title": "Disk C: 97% full", "status": "firing"}
    (decided,) = intake.ingest(world, "event", json.dumps(event).encode())
    assert decided.decision == "quote"
    ticket = desk.ticket_view(world, decided.ticket)
    assert ticket["status"] == "awaiting_approval"
    (quote,) = notices(world, "quote")
    assert quote.to == ["Dee@dune.example"] and quote.state == "waiting"  # the primary, not billing
    assert quote.subject.startswith(f"[#{decided.ticket}] ")
    # seed 004: an initial hour of work, at the client's own hourly rate
    assert (quote.data["amount"], quote.data["basis"]) == ("127.50", "60 minutes at $127.50 an hour")

    tokens = links_of(world, quote)
    shown = pages.open_link(world, tokens["approve"])  # opening the link changes nothing (mail scanners)
    assert shown.status == 200 and shown.form and ("Price", "$127.50") in shown.details
    assert desk.ticket_view(world, decided.ticket)["status"] == "awaiting_approval"

    clock.set_now("2026-11-24T16:30:00Z")
    done = pages.submit_link(world, tokens["approve"], {"note": "Please do it today"})
    assert (done.status, done.title) == (200, "Thank you: approved")
    after = desk.ticket_view(world, decided.ticket)
    assert after["status"] == "in_progress" and after["billable"]
    (note,) = after["notes"]
    assert note["public"] and note["author"] == "Dee@dune.example" and note["at"].startswith("2026-11-24T16:30")
    assert "approved by Dee@dune.example on 2026-11-24 16:30 UTC" in note["text"]
    assert "Please do it today" in note["text"]
    (answer,) = notices(world, "quote_answer")  # the desk hears it too
    assert answer.data["answer"] == "approved" and f"[#{decided.ticket}]" in answer.subject

    again = pages.submit_link(world, tokens["approve"], {})
    assert again.status == 409 and "already answered" in again.title and "approved by Dee@dune.example" in again.message
    other = pages.submit_link(world, tokens["decline"], {})
    assert other.status == 409 and "approved" in other.message
    assert pages.open_link(world, tokens["decline"]).status == 409  # the page says so before any click too
    assert desk.ticket_view(world, decided.ticket)["status"] == "in_progress"
    assert len(notices(world, "quote_answer")) == 1


def test_a_technicians_quote_declined_closes_the_ticket(world):
    opened = desk.open_ticket(world, "acme", "New laptop for reception")
    result = write_quote(world, opened["ticket"], "1490.00", "A laptop, set up and joined to the domain", "terry")
    assert result["to"] == ["jo@acmedental.example"] and result["status"] == "awaiting_approval"
    ticket = desk.ticket_view(world, opened["ticket"])
    assert ticket["notes"][0]["author"] == "terry" and not ticket["notes"][0]["public"]
    assert "$1,490.00" in ticket["notes"][0]["text"]
    (quote,) = notices(world, "quote")
    tokens = links_of(world, quote)
    done = pages.submit_link(world, tokens["decline"], {})
    assert (done.status, done.title) == (200, "Thank you: declined")
    after = desk.ticket_view(world, opened["ticket"])
    assert after["status"] == "closed" and not after["billable"]
    assert "declined by jo@acmedental.example" in after["notes"][-1]["text"]
    late = pages.submit_link(world, tokens["approve"], {})
    assert late.status == 409 and "declined" in late.message


def test_a_newer_quote_replaces_the_older_ones_links(world):
    opened = desk.open_ticket(world, "dune", "Printer")
    write_quote(world, opened["ticket"], "100", "Fix the printer")
    first = notices(world, "quote")[0]
    write_quote(world, opened["ticket"], "80", "Fix the printer, without the new drum")
    newer = notices(world, "quote")[1]
    stale = pages.submit_link(world, links_of(world, first)["approve"], {})
    assert stale.status == 409 and "newer quote" in stale.title
    assert desk.ticket_view(world, opened["ticket"])["status"] == "awaiting_approval"
    assert pages.submit_link(world, links_of(world, newer)["approve"], {}).status == 200


def test_a_quote_that_cannot_be_sent_changes_nothing(world):
    opened = desk.open_ticket(world, "dune", "Printer")
    for amount, description, says in (("0", "x", "amount"), ("12.999", "x", "amount"), ("50", " ", "description")):
        with pytest.raises(TenureError, match=f"^{says}:"):
            write_quote(world, opened["ticket"], amount, description)
    with pytest.raises(NotFound):
        write_quote(world, 999999, "10", "x")
    desk.close_ticket(world, opened["ticket"])
    with pytest.raises(TenureError, match="closed: reopen it"):
        write_quote(world, opened["ticket"], "10", "x")
    assert notices(world, "quote") == [] and desk.ticket_view(world, opened["ticket"])["notes"] == []


def test_settled_by_staff_meanwhile_the_link_says_so(world):
    opened = desk.open_ticket(world, "dune", "Printer")
    write_quote(world, opened["ticket"], "100", "Fix the printer")
    tokens = links_of(world, notices(world, "quote")[0])
    desk.approve_ticket(world, opened["ticket"], "approved on the phone")
    late = pages.submit_link(world, tokens["decline"], {})
    assert late.status == 409 and "in progress" in late.message
    assert desk.ticket_view(world, opened["ticket"])["status"] == "in_progress"


# ------------------------------------------------------------------------------------------- mail in


def test_a_reply_lands_on_its_ticket_as_a_public_note(world):
    opened = desk.open_ticket(world, "dune", "Printer jams")
    desk.change_status(world, opened["ticket"], "waiting_on_client")
    body = mail(
        "Dee <dee@dune.example>",
        f"RE: [#{opened['ticket']}] Printer jams",
        "It jams on tray 2 only.\n\nOn Mon, 23 Nov 2026, Example IT wrote:\n> Which tray?\n",
    )
    (outcome,) = intake.ingest(world, "email", body)
    assert (outcome.decision, outcome.ticket, outcome.alert) == ("ticket", opened["ticket"], None)
    assert outcome.client == "dune"
    ticket = desk.ticket_view(world, opened["ticket"])
    assert ticket["status"] == "in_progress"
    (note,) = ticket["notes"]
    assert (note["author"], note["public"], note["text"]) == ("dee@dune.example", True, "It jams on tray 2 only.")
    assert intake.quarantine_page(world)[0] == []


def test_an_out_of_office_answer_moves_nothing(world):
    opened = desk.open_ticket(world, "dune", "Printer jams")
    desk.change_status(world, opened["ticket"], "waiting_on_client")
    subject = f"Out of office: [#{opened['ticket']}]"
    body = mail("dee@dune.example", subject, "Back Monday.", Auto_Submitted="auto-replied")
    intake.ingest(world, "email", body)
    ticket = desk.ticket_view(world, opened["ticket"])
    assert ticket["status"] == "waiting_on_client" and not ticket["notes"][0]["public"]


def test_a_reply_naming_another_clients_ticket_does_not_land_there(world):
    acme = desk.open_ticket(world, "acme", "Server slow")
    (outcome,) = intake.ingest(world, "email", mail("dee@dune.example", f"Re: [#{acme['ticket']}] Server", "hi"))
    assert outcome.client == "dune" and outcome.ticket != acme["ticket"]  # a new ticket of Dee's own client
    assert desk.ticket_view(world, acme["ticket"])["notes"] == []


def test_a_known_contacts_new_mail_opens_a_ticket_by_its_coverage(world):
    (covered,) = intake.ingest(world, "email", mail("jo@acmedental.example", "Outlook keeps crashing", "Since 9."))
    assert covered.decision == "ticket" and covered.alert is None and "acme-managed" in covered.reason
    ticket = desk.ticket_view(world, covered.ticket)
    assert (ticket["kind"], ticket["status"], ticket["billable"], ticket["title"]) == (
        "request",
        "new",
        False,
        "Outlook keeps crashing",
    )
    assert "Since 9." in ticket["description"]
    (ack,) = notices(world, "ticket_opened")
    assert ack.to == ["jo@acmedental.example"] and ack.subject.startswith(f"[#{covered.ticket}] ")

    # no agreement covers it and the client opted in to billable work: quoted before anyone works on it
    (quoted,) = intake.ingest(world, "email", mail("books@dune.example", "New laptop setup", "For Anna."))
    assert quoted.decision == "quote" and quoted.client == "dune"
    ticket = desk.ticket_view(world, quoted.ticket)
    assert ticket["status"] == "awaiting_approval" and ticket["billable"]
    (quote,) = notices(world, "quote")
    assert quote.to == ["Dee@dune.example"] and quote.data["ticket"] == quoted.ticket


def test_mail_from_nobody_known_still_waits_in_quarantine(world):
    (outcome,) = intake.ingest(world, "email", mail("someone@elsewhere.example", "Hello", "Can you help?"))
    assert outcome.decision == "quarantine" and outcome.ticket is None
    assert [q["payload"] for q in intake.quarantine_page(world)[0]] == [outcome.payload]
    # a tool sending from a contact's address to the per-client alert address is still an alert
    tool = mail("jo@acmedental.example", "Disk full on ACME-DC01", "92%")
    tool = tool.replace(b"To: alerts@example-it.example", b"To: alerts+acme@example-it.example")
    (alert,) = intake.ingest(world, "email", tool)
    assert alert.alert is not None and alert.decision == "ticket"


# ------------------------------------------------------------------------------------------ the page


def test_a_quote_from_the_tickets_page(world, monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    create_user(world, "terry", "a long enough password", "technician")
    opened = log_in(world, "terry", "a long enough password", "127.0.0.1")
    http = TestClient(create_app(world), base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
    ticket = desk.open_ticket(world, "dune", "Printer")["ticket"]
    page = http.get(f"/tickets/{ticket}")
    assert page.status_code == 200 and 'id="quote-form"' in page.text
    sent = http.post(
        f"/tickets/{ticket}/quote",
        data={"csrf": opened.csrf, "amount": "95.00", "description": "New drum unit, fitted"},
    )
    assert sent.status_code == 200 and "quote of $95.00 on its way to Dee@dune.example" in sent.text
    (quote,) = notices(world, "quote")
    assert quote.data["author"] == "terry" and quote.data["amount"] == "95.00"
    refused = http.post(f"/tickets/{ticket}/quote", data={"csrf": opened.csrf, "amount": "0", "description": "x"})
    assert refused.status_code == 422 and "must be more than zero" in refused.text  # beside the price
    assert len(notices(world, "quote")) == 1


def test_a_quote_from_the_command_line(world, cli):
    ticket = desk.open_ticket(world, "dune", "Printer")["ticket"]
    done = cli("ticket", "quote", str(ticket), "--amount", "95", "--description", "New drum unit", "--json")
    quoted = json.loads(done.stdout)
    assert (quoted["ticket"], quoted["amount"], quoted["to"]) == (ticket, "95.00", ["Dee@dune.example"])
    assert quoted["subject"].startswith(f"[#{ticket}] ") and quoted["status"] == "awaiting_approval"
    bad = cli("ticket", "quote", str(ticket), "--amount", "9.999", "--description", "x", check=False)
    assert bad.returncode == 1 and bad.stderr.strip() == "error: amount: '9.999' has more than two decimals"
    assert len(notices(world, "quote")) == 1

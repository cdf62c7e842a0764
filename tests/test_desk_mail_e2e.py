"""The desk's mail end to end, as a client and a technician live it: `tenure serve` over real HTTP, its SMTP
intake, and a real SMTP server (aiosmtpd) receiving what Tenure sends. A technician quotes work over the API;
the quote arrives once, its Approve link works once and the ticket is billable work in progress; the
client's reply to the ticket's mail lands on it as a public note and takes it off `waiting_on_client`."""

from __future__ import annotations

import re
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage

import httpx
import pytest

from tenure import clock
from tenure.book.service import import_book
from tests.books import small
from tests.test_outbox import Server as MailServer
from tests.test_serve_e2e import Server as Tenure
from tests.test_serve_e2e import free_port

pytestmark = pytest.mark.slow
SECRET = "test-secret-key-for-signed-links-0123456789"


@pytest.fixture
def desk(db, tmp_path):
    clock.set_now("2026-11-20T15:00:00Z")
    book = small()
    book["clients"].append(
        {
            "key": "dune",
            "name": "Dune Dental",
            "domains": ["dune.example"],
            "contacts": [{"name": "Dee", "email": "dee@dune.example", "roles": ["primary"]}],
            "agreements": [{"key": "dune-adhoc", "kind": "adhoc", "start": "2026-01-01", "hourly_rate": "150.00"}],
        }
    )
    import_book(db, book)
    clock.set_now(None)
    outbound = MailServer(free_port()).start()
    tenure = Tenure(db, tmp_path / "home")
    tenure.env |= {
        "TENURE_SMTP_URL": f"smtp://127.0.0.1:{outbound.port}",
        "TENURE_MAIL_FROM": "desk@example-it.example",
        "TENURE_STAFF_EMAIL": "staff@example-it.example",
        "TENURE_SECRET_KEY": SECRET,
        "TENURE_BASE_URL": tenure.url,
    }
    yield tenure, outbound
    tenure.kill()
    outbound.stop()


def send_outbox(tenure: Tenure) -> None:
    """What the worker's outbox round does every few seconds, now (the worker may win some: each once)."""
    subprocess.run([sys.executable, "-m", "tenure", "notices", "send"], env=tenure.env, check=True, timeout=120,
                   capture_output=True)  # fmt: skip


def wait_for(check, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def test_a_quote_approved_by_its_link_and_a_reply_landing_as_a_note(desk):
    tenure, outbound = desk
    token = tenure.cli("token", "create", "terry", "--role", "technician").strip()
    tenure.start()
    api = httpx.Client(base_url=tenure.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    opened = api.post("/api/v1/tickets", json={"client": "dune", "title": "Replace the office switch"})
    assert opened.status_code == 201
    number = opened.json()["ticket"]
    bad = api.post(f"/api/v1/tickets/{number}/quote", json={"amount": "-5", "description": "x"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    quoted = api.post(
        f"/api/v1/tickets/{number}/quote", json={"amount": "480.00", "description": "A 24-port switch, installed"}
    )
    assert quoted.status_code == 201, quoted.text
    assert quoted.json()["to"] == ["dee@dune.example"] and quoted.json()["status"] == "awaiting_approval"

    # the quote reaches the client's primary contact, with the ticket's number and the price
    send_outbox(tenure)
    (rcpt, message) = wait_for(
        lambda: next((m for m in outbound.inbox.received if "Quote" in m[1]["Subject"]), None), "the quote's mail"
    )
    assert rcpt == ["dee@dune.example"] and message["Subject"].startswith(f"[#{number}] Quote for your approval")
    body = text_of(message)
    assert "$480.00" in body and "A 24-port switch, installed" in body
    approve = re.search(r"Approve: (\S+)", body).group(1)
    decline = re.search(r"Decline: (\S+)", body).group(1)
    assert approve.startswith(f"{tenure.url}/n/")

    # the client opens the link (nothing changes yet), then confirms
    page = httpx.get(approve, timeout=10)
    assert page.status_code == 200 and "Approve the quote" in page.text and "$480.00" in page.text
    assert api.get(f"/api/v1/tickets/{number}").json()["status"] == "awaiting_approval"
    confirmed = httpx.post(approve, data={"note": "Go ahead"}, timeout=10)
    assert confirmed.status_code == 200 and "Thank you: approved" in confirmed.text
    ticket = api.get(f"/api/v1/tickets/{number}").json()
    assert ticket["status"] == "in_progress" and ticket["billable"]
    note = ticket["notes"][-1]
    assert note["public"] and note["author"] == "dee@dune.example" and "approved by dee@dune.example" in note["text"]
    # a second click, on either link, says what was decided and changes nothing
    for link in (approve, decline):
        again = httpx.post(link, data={}, timeout=10)
        assert again.status_code == 409 and "already answered" in again.text and "approved" in again.text
    assert api.get(f"/api/v1/tickets/{number}").json()["status"] == "in_progress"

    # the technician asks the client something; the client's reply comes back over SMTP
    waiting = api.patch(f"/api/v1/tickets/{number}", json={"status": "waiting_on_client"})
    assert waiting.status_code == 200 and waiting.json()["status"] == "waiting_on_client"
    reply = EmailMessage()
    reply["From"], reply["To"] = "Dee <dee@dune.example>", "alerts@example-it.example"
    reply["Subject"] = f"RE: {message['Subject']}"
    reply["In-Reply-To"] = message["Message-ID"]
    reply.set_content("Tuesday after 2 pm suits us.\n\nOn Tue, Example IT wrote:\n> Before we do any work\n")
    with smtplib.SMTP("127.0.0.1", tenure.smtp, timeout=10) as smtp:
        smtp.send_message(reply)

    def noted():
        found = api.get(f"/api/v1/tickets/{number}").json()
        return found if found["notes"][-1]["text"] == "Tuesday after 2 pm suits us." else None

    landed = wait_for(noted, "the reply's note")
    assert landed["status"] == "in_progress"
    assert (landed["notes"][-1]["author"], landed["notes"][-1]["public"]) == ("dee@dune.example", True)

    # mail is counted at the server: the quote once, the desk's word of the approval once. The worker's own
    # outbox round may be sending it when `notices send` looks: then it arrives a moment after, not twice
    send_outbox(tenure)
    approval = f"[#{number}] Quote approved"
    wait_for(lambda: any(approval in m["Subject"] for _, m in outbound.inbox.received), "the approval's mail")
    send_outbox(tenure)  # a round after it finds nothing left to send
    subjects = [m["Subject"] for _, m in outbound.inbox.received]
    assert sum(1 for s in subjects if "Quote for your approval" in s) == 1
    assert sum(1 for s in subjects if approval in s) == 1
    assert len(set(outbound.inbox.ids)) == len(outbound.inbox.ids)

"""Words, not codes, and money with thousands separators, on every page of the demo: the pages of a month of
work (the demo, billed, a ticket awaiting a quote's approval, an offboarding run under way) are read as a
person reads them (the text, without tags; code in <code>, URLs and form values allowed) and no vocabulary
code shows, no badge or choice shows a raw value, and every amount of 1,000 or more has its separators."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenure import clock, vocabulary
from tenure.accounts.users import USER_ROLES, create_user, log_in
from tenure.agreements import rules as agreement_rules
from tenure.api.app import create_app
from tenure.billing import rules as billing_rules
from tenure.billing import service as billing
from tenure.billing.models import Invoice
from tenure.book.demo import load_demo
from tenure.clients.models import Client
from tenure.desk import service as desk
from tenure.desk.mail.quotes import write_quote
from tenure.notices.outbox import STATES as MAIL_STATES
from tenure.offboarding import rules as offboarding_rules
from tenure.offboarding.models import OffboardingRun
from tenure.triage.models import Ticket
from tenure.triage.rules import DECISIONS
from tenure.web.routes import SESSION_COOKIE
from tenure.web.words import WORDS, words

pytestmark = pytest.mark.db

NOW = "2026-11-24T15:00:00Z"
PASSWORD = "a long enough password"
TABS = ("overview", "agreements", "devices", "contacts", "backups", "time", "ledger", "invoices", "history")


def vocabularies() -> set[str]:
    """Every closed vocabulary of the domain (vocabulary.py and the rules modules), and the codes words.py knows."""
    found: set[str] = set(WORDS)
    for value in vars(vocabulary).values():
        if isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
            found |= set(value)
    found |= set(offboarding_rules.REASONS + offboarding_rules.ACCESS + offboarding_rules.DEPLOYMENTS)
    found |= set(offboarding_rules.MOVING_TO + offboarding_rules.SECURITY_ACCOUNT)
    found |= set(get_args(offboarding_rules.StepKind))
    for literal in (agreement_rules.Layer, agreement_rules.LineKind, agreement_rules.BlockMoveKind):
        found |= set(get_args(literal))
    found |= set(billing_rules.FEE_KINDS + DECISIONS + USER_ROLES + MAIL_STATES)
    return found


CODES = vocabularies()
SNAKE = {c for c in CODES if "_" in c}
MONEY_WITHOUT_SEPARATORS = re.compile(r"(?<![\d,.\w-])\d{4,}\.\d{2}(?!\d)")


class Reading(HTMLParser):
    """What a person reads on a page: text outside <code>, <pre>, scripts and form values; the badges' text
    (state, class, decision) and each choice's text with the value it sends."""

    SKIP = {"code", "pre", "script", "style", "textarea"}

    def __init__(self) -> None:
        super().__init__()
        self.skipping = 0
        self.text: list[str] = []
        self.badges: list[str] = []
        self.options: list[tuple[str, str]] = []
        self._badge = 0
        self._option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        classes = (dict(attrs).get("class") or "").split()
        if tag == "span" and {"state", "class", "decision"} & set(classes):
            self._badge += 1
            self.badges.append("")
        if tag == "option":
            self._option = dict(attrs).get("value")
            self.options.append((self._option or "", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        if tag == "span" and self._badge:
            self._badge -= 1
        if tag == "option":
            self._option = None

    def handle_data(self, data: str) -> None:
        if self.skipping or not data.strip():
            return
        self.text.append(data.strip())
        if self._badge:
            self.badges[-1] += data.strip()
        if self._option is not None:
            value, shown = self.options[-1]
            self.options[-1] = (value, shown + data.strip())


def read(html: str) -> Reading:
    reading = Reading()
    reading.feed(html)
    return reading


@pytest.fixture
def month(db) -> Any:
    """The demo with its months billed, tickets in several states (one awaiting a quote's approval) and an
    offboarding run under way; the owner signed in (who sees every page)."""
    clock.set_now(NOW)
    load_demo(db)
    for period in ("2026-10", "2026-11", "2026-12"):
        billing.run_billing(db, period)
    waiting = desk.open_ticket(db, "acme", "Printer jams on the second floor", kind="request", priority="P2")
    desk.change_status(db, waiting["ticket"], "waiting_on_client")
    working = desk.open_ticket(db, "acme", "Slow laptop")
    desk.change_status(db, working["ticket"], "in_progress")
    quoted = desk.open_ticket(db, "harbor", "A new firewall", kind="project")
    write_quote(db, quoted["ticket"], "1450.00", "A firewall and half a day on site", "olive")
    app = create_app(db)
    create_user(db, "olive", PASSWORD, "owner")
    opened = log_in(db, "olive", PASSWORD, "127.0.0.1")
    owner = TestClient(app, base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
    start = owner.get("/clients/maple/offboarding").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', start).group(1)
    answers = {
        "csrf": csrf, "end_of_service": "2026-12-31", "reason": "client_cancelled", "access": "remote",
        "agent_deployment": "manual", "moving_to": "other_msp", "new_contact_name": "Ivy North",
        "new_contact_email": "ivy@north.example", "security_account": "close",
    }  # fmt: skip
    assert owner.post("/clients/maple/offboarding", data=answers, follow_redirects=False).status_code == 303
    yield {"db": db, "owner": owner}
    clock.set_now(None)


def every_page(db: Any) -> list[str]:
    with db.reader() as s:
        clients = list(s.scalars(select(Client.key).order_by(Client.key)))
        invoices = list(s.scalars(select(Invoice.number).order_by(Invoice.number)))
        tickets = list(s.scalars(select(Ticket.id).order_by(Ticket.id)))
        runs = list(s.scalars(select(OffboardingRun.id).order_by(OffboardingRun.id)))
    pages = [
        "/", "/reports/unpaid", "/clients", "/time", "/tickets", "/tickets?status=all", "/triage", "/alerts",
        "/billing", "/offboarding", "/reports/profitability", "/settings", "/search?q=acme", "/maintenance",
        "/settings/users", "/settings/tokens", "/settings/outbox", "/settings/intake",
    ]  # fmt: skip
    for key in clients:
        pages += [f"/clients/{key}?tab={tab}" for tab in TABS]
        pages += [f"/clients/{key}/statement", f"/clients/{key}/fit", f"/clients/{key}/offboarding"]
    pages += [f"/invoices/{number}" for number in invoices]
    pages += [f"/invoices/{number}/document" for number in invoices]  # the client's copy
    pages += [f"/tickets/{number}" for number in tickets]
    pages += [f"/offboarding/{run}" for run in runs]
    return pages


def test_every_page_shows_words_not_codes_and_money_with_separators(month):
    owner = month["owner"]
    codes_seen: list[tuple[str, str]] = []
    raw_badges: list[tuple[str, str]] = []
    raw_choices: list[tuple[str, str, str]] = []
    bare_money: list[tuple[str, str]] = []
    pages = every_page(month["db"])
    assert len(pages) > 100
    for url in pages:
        answer = owner.get(url)
        assert answer.status_code == 200, (url, answer.status_code)
        reading = read(answer.text)
        for text in reading.text:
            codes_seen += [(url, code) for code in re.findall(r"[a-z0-9]+(?:_[a-z0-9]+)+", text) if code in SNAKE]
            bare_money += [(url, text) for _ in MONEY_WITHOUT_SEPARATORS.findall(text)]
        raw_badges += [(url, badge) for badge in reading.badges if badge in CODES and badge != words(badge)]
        raw_choices += [
            (url, value, shown) for value, shown in reading.options if value in CODES and shown != words(value)
        ]
    assert not codes_seen, sorted(set(codes_seen))[:20]
    assert not raw_badges, sorted(set(raw_badges))[:20]
    assert not raw_choices, sorted(set(raw_choices))[:20]
    assert not bare_money, sorted(set(bare_money))[:20]


def test_every_code_of_every_vocabulary_reads_as_words():
    for code in CODES:
        shown = words(code)
        assert "_" not in shown and shown[:1] == shown[:1].upper(), (code, shown)
    assert words("waiting_on_client") == "Waiting on the client"
    assert words("msp_ended") == "We ended it"
    assert words("block_purchase") == "Block bought"


def test_a_choice_shows_words_and_sends_the_code(month):
    page = month["owner"].get("/clients/acme?tab=time").text
    choices = dict(read(page).options)
    assert choices["remote_support"] == "Remote support" and choices["malware_cleanup"] == "Malware clean-up"
    assert '<option value="remote_support" selected>Remote support</option>' in page
    tickets = month["owner"].get("/tickets").text
    assert '<option value="waiting_on_client" >Waiting on the client</option>' in tickets

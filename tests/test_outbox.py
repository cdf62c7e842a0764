"""The outbox: waiting notices go out over SMTP to a real server on loopback (aiosmtpd), rendered from their
kind's template; SMTP down then up delivers each message exactly once; a crash between the server's accept
and the mark resends once, with the same Message-ID; coverage statements are written once a year."""

from __future__ import annotations

import email
import json
import socket
from datetime import timedelta
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from tenure import clock
from tenure.book.service import import_book
from tenure.clients.models import Client
from tenure.errors import TenureError
from tenure.notices import outbox
from tenure.notices import service as notices
from tenure.notices.mailer import Mailer, mail_config, parse_smtp_url
from tenure.notices.models import Notice
from tenure.notices.render import render_notice
from tests.books import small
from tests.test_maintenance import world

NOW = "2026-12-02T15:00:00Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An SMTP server's handler that keeps what it accepts (or answers RCPT with `refuse`)."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @property
    def ids(self) -> list[str]:
        return [m["Message-ID"] for _, m in self.received]


class Server:
    def __init__(self, port: int, **options) -> None:
        self.port, self.inbox, self.options, self.controller = port, Inbox(), options, None

    def start(self) -> Server:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **self.options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(monkeypatch):
    server = Server(free_port())
    monkeypatch.setenv("TENURE_SMTP_URL", f"smtp://127.0.0.1:{server.port}")
    monkeypatch.setenv("TENURE_MAIL_FROM", "it@example-it.example")
    monkeypatch.setenv("TENURE_STAFF_EMAIL", "desk@example-it.example")
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    yield server
    server.stop()


@pytest.fixture
def msp(db):
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, small())
    clock.set_now(NOW)
    return db


def record(db, kind: str = "alert_forward", to=("jo@acmedental.example",), **extra) -> int:
    """A notice as another part of Tenure records it: text only, no HTML."""
    with db.unit_of_work() as s:
        client = s.scalars(select(Client).where(Client.key == "acme")).one()
        n = Notice(
            client_id=client.id,
            kind=kind,
            dedupe_key=extra.pop("dedupe_key", f"test:{kind}:{clock.now().isoformat()}:{len(to)}:{id(extra)}"),
            to=list(to),
            cc=[],
            subject=extra.pop("subject", f"Acme Dental: {kind}"),
            body_text=extra.pop("body_text", "Backup job DC01 nightly failed.\n\n- ACME-DC01\n- exit code 1"),
            body_html=None,
            data=extra.pop("data", {}),
            state="waiting",
            attempts=0,
            created_at=clock.now(),
        )
        s.add(n)
        s.flush()
        return n.id


def row(db, notice_id: int) -> Notice:
    with db.reader() as s:
        return s.get(Notice, notice_id)


# ------------------------------------------------------------------------------------------ sending


def test_waiting_mail_goes_out_rendered_from_its_kinds_template(msp, smtp):
    smtp.start()
    low = record(
        msp,
        "low_balance",
        subject="Acme Dental: prepaid hours are running low (2:30 left)",
        body_text="On 2026-12-01 the prepaid block balance of Acme Dental fell to 2:30 hours.",
        data={
            "date": "2026-12-01",
            "balance_minutes": 150,
            "burn_minutes_per_day": "30",
            "run_out": "2026-12-06",
            "audience": ["staff", "client"],
        },
    )
    forward = record(msp, "alert_forward")
    report = outbox.send_due(msp)
    assert report.count("sent") == 2 and report.waiting_because is None
    by_id = {m["X-Tenure-Notice"].split()[0]: (rcpt, m) for rcpt, m in smtp.inbox.received}
    rcpt, message = by_id[str(low)]
    sent = row(msp, low)
    assert sent.state == "sent" and sent.sent_at == clock.now() and sent.attempts == 1
    assert message["Message-ID"] == sent.message_id and sent.message_id.startswith(f"<tenure.notice.{low}.")
    assert sent.message_id.endswith("@example-it.example>")
    assert message["From"] == "Example IT <it@example-it.example>"
    assert message["To"] == "jo@acmedental.example" and "desk@example-it.example" in rcpt  # staff: Bcc
    assert "desk@" not in str(message)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "running low" in html and "3.5 hours a week" in html and "6 December 2026" in html
    assert sent.data["links"]["request"] in text and sent.data["links"]["request"] in html
    assert "running low" in sent.body_html and sent.data["links"]["request"] in sent.body_text  # what went out
    _, fwd = by_id[str(forward)]
    assert "<li>ACME-DC01</li>" in fwd.get_body(("html",)).get_content()
    assert outbox.send_due(msp).results == [] and len(smtp.inbox.received) == 2  # nothing twice


def test_without_smtp_settings_mail_waits_in_the_outbox(msp, monkeypatch):
    monkeypatch.delenv("TENURE_SMTP_URL", raising=False)
    monkeypatch.delenv("TENURE_MAIL_FROM", raising=False)
    notice = record(msp)
    report = outbox.send_due(msp)
    assert report.results == [] and "TENURE_SMTP_URL" in report.waiting_because
    assert row(msp, notice).state == "waiting" and row(msp, notice).attempts == 0


def test_smtp_down_then_up_delivers_each_message_exactly_once(msp, smtp):
    ids = [record(msp, dedupe_key=f"down:{n}") for n in range(3)]
    first = outbox.send_due(msp)  # nothing listens on the port
    assert [r.state for r in first.results] == ["waiting"] * 3
    for notice_id in ids:
        n = row(msp, notice_id)
        assert n.attempts == 1 and n.not_before == clock.now() + timedelta(minutes=1)
        assert "cannot reach smtp://127.0.0.1" in n.error and n.message_id
    assert outbox.send_due(msp).results == []  # not due again yet
    clock.set_now(clock.now() + timedelta(minutes=1))
    assert [r.state for r in outbox.send_due(msp).results] == ["waiting"] * 3
    assert row(msp, ids[0]).not_before == clock.now() + timedelta(minutes=2)  # 1, 2, 4 … minutes
    ids_before = [row(msp, i).message_id for i in ids]

    smtp.start()
    clock.set_now(clock.now() + timedelta(minutes=1))
    assert outbox.send_due(msp).results == []  # the server is up, but the backoff has not run out
    clock.set_now(clock.now() + timedelta(minutes=1))
    assert [r.state for r in outbox.send_due(msp).results] == ["sent"] * 3
    assert sorted(smtp.inbox.ids) == sorted(ids_before)  # each once, with the Message-ID fixed at first claim
    clock.set_now(clock.now() + timedelta(hours=1))
    assert outbox.send_due(msp).results == [] and len(smtp.inbox.received) == 3
    assert all(row(msp, i).state == "sent" and row(msp, i).attempts == 3 for i in ids)


class Crash(BaseException):
    """The process dies here."""


def test_a_crash_after_the_server_accepted_resends_once_with_the_same_message_id(msp, smtp, monkeypatch):
    smtp.start()
    notice = record(msp)
    finish = outbox._finish

    def dies_before_marking_sent(db, notice_id, attempts, **values):
        if values.get("state") == "sent":
            raise Crash
        return finish(db, notice_id, attempts, **values)

    monkeypatch.setattr(outbox, "_finish", dies_before_marking_sent)
    with pytest.raises(Crash):
        outbox.send_due(msp)
    monkeypatch.setattr(outbox, "_finish", finish)
    assert len(smtp.inbox.received) == 1
    claimed = row(msp, notice)
    assert claimed.state == "sending" and claimed.not_before == clock.now() + outbox.LEASE

    clock.set_now(clock.now() + timedelta(minutes=5))
    assert outbox.send_due(msp).results == []  # within the lease: not resent blindly
    clock.set_now(clock.now() + outbox.LEASE)
    assert [r.state for r in outbox.send_due(msp).results] == ["sent"]
    assert smtp.inbox.ids == [claimed.message_id, claimed.message_id]  # the receiver can dedupe
    sent = row(msp, notice)
    assert sent.state == "sent" and sent.attempts == 2 and "outcome was unknown" in sent.error
    assert outbox.send_due(msp).results == [] and len(smtp.inbox.received) == 2


def test_a_crash_before_the_send_delivers_once_after_the_lease(msp, smtp, monkeypatch):
    smtp.start()
    notice = record(msp)
    send = Mailer.send

    def dies(self, message, recipients):
        raise Crash

    monkeypatch.setattr(Mailer, "send", dies)
    with pytest.raises(Crash):
        outbox.send_due(msp)
    monkeypatch.setattr(Mailer, "send", send)
    assert smtp.inbox.received == [] and row(msp, notice).state == "sending"
    clock.set_now(clock.now() + outbox.LEASE)
    outbox.send_due(msp)
    assert smtp.inbox.ids == [row(msp, notice).message_id]


def test_two_workers_never_claim_the_same_notice(msp, smtp):
    notice = record(msp)
    config = mail_config()
    assert outbox._claim(msp, notice, config) is not None
    assert outbox._claim(msp, notice, config) is None  # `sending`, within its lease
    assert row(msp, notice).attempts == 1


def test_refusals_fail_for_good_or_retry_with_backoff(msp, smtp, monkeypatch):
    smtp.start()
    smtp.inbox.refuse = "550 5.1.1 no such user"
    gone = record(msp)
    assert [r.state for r in outbox.send_due(msp).results] == ["failed"]
    assert "550" in row(msp, gone).error and row(msp, gone).not_before is None

    smtp.inbox.refuse = "451 4.3.0 try again later"
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 3)
    later = record(msp, dedupe_key="later")
    for _ in range(2):
        assert [r.state for r in outbox.send_due(msp).results] == ["waiting"]
        clock.set_now(row(msp, later).not_before)
    assert [r.state for r in outbox.send_due(msp).results] == ["failed"]
    assert row(msp, later).error.startswith("gave up after 3 attempts")

    smtp.inbox.refuse = None
    outbox.requeue(msp, later)
    assert [r.state for r in outbox.send_due(msp).results] == ["sent"]
    with pytest.raises(TenureError, match="only a failed or kept"):
        outbox.requeue(msp, later)


def test_a_notice_for_nobody_is_kept_and_one_for_staff_goes_to_staff(msp, smtp):
    smtp.start()
    nobody = record(msp, to=(), data={"audience": ["client"]})
    staff = record(msp, "block_request", to=(), dedupe_key="staff", data={"audience": ["staff"]})
    outbox.send_due(msp)
    assert row(msp, nobody).state == "kept" and "no recipient" in row(msp, nobody).error
    assert row(msp, staff).state == "sent"
    ((rcpt, message),) = smtp.inbox.received
    assert rcpt == ["desk@example-it.example"] and message["To"] == "desk@example-it.example"


def test_login_with_the_credentials_of_the_url(msp, smtp, monkeypatch):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s@cret:1")

    smtp.options = {"authenticator": authenticator, "auth_require_tls": False}
    smtp.start()
    monkeypatch.setenv("TENURE_SMTP_URL", f"smtp://tenure:s%40cret%3A1@127.0.0.1:{smtp.port}")
    record(msp)
    assert [r.state for r in outbox.send_due(msp).results] == ["sent"]
    assert logins == [(b"tenure", b"s@cret:1")]


def test_smtp_urls():
    plain = parse_smtp_url("smtp://mail.example.com", "IT <it@example.com>")
    assert (plain.port, plain.user, plain.from_address, plain.domain) == (25, None, "it@example.com", "example.com")
    tls = parse_smtp_url("smtp+starttls://u%40x:p@mail.example.com", "it@example.com")
    assert (tls.scheme, tls.port, tls.user, tls.password) == ("smtp+starttls", 587, "u@x", "p")
    assert "password" not in repr(tls)
    with pytest.raises(TenureError, match="scheme"):
        parse_smtp_url("http://mail.example.com", "it@example.com")
    with pytest.raises(TenureError, match="TENURE_MAIL_FROM"):
        parse_smtp_url("smtp://mail.example.com", "not an address")
    assert outbox.backoff(1) == timedelta(minutes=1) and outbox.backoff(30) == timedelta(hours=6)


def test_every_kind_has_a_template_in_the_msps_name():
    context = {
        "msp": {"name": "Example IT", "currency": "USD"},
        "client": {"name": "Acme Dental", "key": "acme"},
        "subject": "Subject",
        "body": "Line one.\n\n- a\n- b",
        "data": {"choice_label": "20 hours", "requested_at": "2026-12-02T15:00:00+00:00", "from_subject": "Low"},
        "links": {},
        "today": clock.now().date(),
        "burn_per_week": None,
        "link_expires": clock.now().date(),
        "request_label": "Ask",
    }
    for kind in (
        "low_balance",
        "balance_zero",
        "retainer_zero",
        "on_hold",
        "alert_forward",
        "antivirus",
        "vendor",
        "handover",
        "block_request",
        "something_new",
    ):
        text, html = render_notice(kind, context)
        assert "Example IT" in text + html and html.startswith("<!DOCTYPE html>"), kind
        assert "<script" not in html and "<link" not in html and "src=" not in html, kind  # no external assets


def test_notices_send_and_list_on_the_command_line(msp, smtp, cli):
    smtp.start()
    notice = record(msp)
    env = {"TENURE_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}", "TENURE_MAIL_FROM": "it@example-it.example"}
    waiting = json.loads(cli("notices", "list", "--state", "waiting", "--json").stdout)["notices"]
    assert [n["id"] for n in waiting] == [notice]
    sent = json.loads(cli("notices", "send", "--json", env=env).stdout)
    assert sent["sent"] == 1 and sent["notices"][0]["notice"] == notice
    assert json.loads(cli("notices", "send", "--json", env=env).stdout)["sent"] == 0
    listed = json.loads(cli("notices", "list", "--client", "acme", "--json").stdout)["notices"]
    assert listed[0]["state"] == "sent" and listed[0]["message_id"] == smtp.inbox.ids[0]
    unset = json.loads(cli("notices", "send", "--json").stdout)
    assert unset["sent"] == 0 and "TENURE_SMTP_URL" in unset["waiting_because"]
    bad = cli("notices", "list", "--state", "lost", check=False)
    assert bad.returncode == 1 and "state 'lost'" in bad.stderr


# ------------------------------------------------------------------------------ coverage statements


def test_coverage_statements_go_to_unmonitored_clients_once_a_year(db, monkeypatch):
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, world())
    clock.set_now(NOW)
    results = {r.client: r for r in notices.coverage_statements(db)}
    assert results["acme"].status == "monitored" and results["cedar"].status == "monitored"
    assert results["dune"].status == "written" and results["pine"].status == "written"
    dune = row(db, results["dune"].notice)
    assert dune.kind == "coverage_statement" and dune.to == ["dee@dune.example"] and dune.state == "waiting"
    assert dune.data["date"] == "2026-12-02" and "2 December 2026" in dune.body_text
    assert "Example IT does not monitor your systems or your backups" in dune.body_text.replace("\n", " ")
    assert "essentials: $300.00 a month" in dune.body_text  # the catalog's offers that would monitor them

    again = {r.client: r for r in notices.coverage_statements(db)}
    assert again["dune"].status == "exists" and again["dune"].notice == dune.id
    clock.set_now("2026-12-03T15:00:00Z")
    asked = notices.coverage_statements(db, "dune", again=True)
    assert [r.status for r in asked] == ["written"] and asked[0].notice != dune.id
    clock.set_now("2027-01-05T15:00:00Z")  # a new year: a new statement
    assert [r.status for r in notices.coverage_statements(db, "dune")] == ["written"]
    assert len(notices.list_notices(db, client="dune", kind="coverage_statement")) == 3
    with pytest.raises(TenureError, match="no client"):
        notices.coverage_statements(db, "nobody")


def test_coverage_statement_reaches_a_client_monitored_for_all_but_its_backups(db, monkeypatch):
    """Seed 004: an agreement that covers monitoring but not backup monitoring leaves the backups unwatched,
    and the client is told so in writing (before, it counted as monitored and got nothing)."""
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    clock.set_now("2026-11-20T15:00:00Z")
    book = world()
    cedar = next(c for c in book["clients"] if c["key"] == "cedar")
    cedar["agreements"][0]["covers"] = ["monitoring"]
    import_book(db, book)
    clock.set_now(NOW)
    results = {r.client: r for r in notices.coverage_statements(db)}
    assert results["acme"].status == "monitored"  # backup_monitoring covered: nothing to say
    assert results["cedar"].status == "written"
    cedar_notice = row(db, results["cedar"].notice)
    assert cedar_notice.to == ["ann@cedarlaw.example"] and cedar_notice.data["not_monitored"] == ["backup_monitoring"]
    text = cedar_notice.body_text.replace("\n", " ")
    assert "Example IT does not monitor your backups for Cedar Law" in text
    assert "We watch your systems under your agreement" in text and "a disk fills up" not in text
    assert "your backups for Cedar Law" in cedar_notice.body_html.replace("\n", " ")
    # the unmonitored client's letter still says both
    dune = row(db, results["dune"].notice)
    assert dune.data["not_monitored"] == ["monitoring", "backup_monitoring"]
    assert "does not monitor your systems or your backups" in dune.body_text.replace("\n", " ")

"""Invoices out: an issued invoice reaches a real SMTP server (aiosmtpd on loopback) with its PDF attached,
counted once at the server even when the worker dies mid-send; it goes again on request; an overdue
invoice gets one reminder per step of the MSP's `reminder_days`, none after payment; a client's statement
of account (open invoices, payments, balance) as JSON, a page, a PDF and mail."""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tenure import clock
from tenure.accounts import users
from tenure.accounts.service import create_token
from tenure.api.app import create_app
from tenure.billing import mailing, rules
from tenure.billing.service import change_status, run_billing
from tenure.book.service import export_book, import_book
from tenure.errors import TenureError, ValidationFailed
from tenure.msp.changes import edit_settings, get_settings
from tenure.notices import attachments, outbox
from tenure.notices.service import list_notices
from tests.books import small
from tests.test_outbox import Crash, Server, free_port

ISSUE_DAY = "2026-12-02T15:00:00Z"  # invoices of 2026-12 are dated the 1st, due the 11th (Net 10)


def book() -> dict[str, Any]:
    """small()'s acme (one contact, billing among its roles) and bravo (no contact at all), cedar (a primary
    and a separate billing contact) and dune (a primary contact only)."""
    b = small()

    def managed(key: str, fee: str) -> dict[str, Any]:
        return {
            "key": key,
            "kind": "managed",
            "start": "2026-12-01",
            "monthly_fee": fee,
            "included_hours": 2,
            "overage_rate": "120.00",
            "hourly_rate": "120.00",
            "covers": ["remote_support"],
        }

    b["clients"] += [
        {
            "key": "cedar",
            "name": "Cedar Law",
            "contacts": [
                {"name": "Ann Cedar", "email": "ann@cedarlaw.example", "roles": ["primary"]},
                {"name": "Bob Books", "email": "books@cedarlaw.example", "roles": ["billing"]},
            ],
            "agreements": [managed("cedar-managed", "400.00")],
        },
        {
            "key": "dune",
            "name": "Dune Dental",
            "contacts": [{"name": "Dee", "email": "dee@dune.example", "roles": ["primary"]}],
            "agreements": [managed("dune-managed", "250.00")],
        },
        {"key": "elm", "name": "Elm Bakery", "agreements": [managed("elm-managed", "100.00")]},
    ]
    return b


@pytest.fixture
def smtp(monkeypatch):
    server = Server(free_port())
    monkeypatch.setenv("TENURE_SMTP_URL", f"smtp://127.0.0.1:{server.port}")
    monkeypatch.setenv("TENURE_MAIL_FROM", "billing@example-it.example")
    monkeypatch.setenv("TENURE_STAFF_EMAIL", "desk@example-it.example")
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def msp(db):
    clock.set_now("2026-11-20T15:00:00Z")
    import_book(db, book())
    clock.set_now(ISSUE_DAY)
    run_billing(db, "2026-12")
    return db


def numbers_by_client(db) -> dict[str, str]:
    from tenure.billing.service import list_invoices

    return {i["client"]: i["number"] for i in list_invoices(db, period="2026-12")}


def received(server: Server, kind: str | None = None) -> list[Any]:
    return [m for _, m in server.inbox.received if kind is None or m["X-Tenure-Notice"].split()[1] == kind]


def pdf_of(message: Any) -> tuple[str, bytes]:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    return part.get_filename(), part.get_content()


# ------------------------------------------------------------------------------------ issue and send


def test_an_issued_invoice_arrives_once_with_its_pdf_even_when_the_worker_dies_mid_send(msp, smtp, monkeypatch):
    acme = numbers_by_client(msp)["acme"]
    result = mailing.issue_invoices(msp, [acme])
    assert result["issued"] == 1 and result["refused"] == []
    assert result["invoices"][0]["mail"]["to"] == ["jo@acmedental.example"]

    render = attachments.render

    def dies_while_making_the_pdf(db, specs):
        raise Crash

    monkeypatch.setattr(attachments, "render", dies_while_making_the_pdf)
    with pytest.raises(Crash):
        outbox.send_due(msp)
    monkeypatch.setattr(attachments, "render", render)
    assert received(smtp) == []
    clock.set_now(clock.now() + outbox.LEASE)  # the dead worker's lease runs out: another one sends it
    assert [r.state for r in outbox.send_due(msp).results] == ["sent"]
    assert outbox.send_due(msp).results == []

    [message] = received(smtp)  # once at the server
    assert message["To"] == "jo@acmedental.example"
    assert message["Subject"] == f"Invoice {acme} from Example IT: 4800.00 USD, due 2026-12-11"
    name, pdf = pdf_of(message)
    assert name == f"invoice-{acme}.pdf" and pdf.startswith(b"%PDF")
    assert "11 December 2026" in message.get_body(("html",)).get_content()
    assert "$4,800.00" in message.get_body(("plain",)).get_content()

    again = mailing.send_again(msp, acme)  # on request: a second message, the same invoice
    assert again["mail"]["state"] == "waiting"
    outbox.send_due(msp)
    first, second = received(smtp)
    assert second["Message-ID"] != first["Message-ID"] and pdf_of(second)[0] == f"invoice-{acme}.pdf"
    assert [m["kind"] for m in mailing.mail_history(msp, acme)] == ["issued", "again"]
    assert all(m["state"] == "sent" for m in mailing.mail_history(msp, acme))


def test_issuing_is_once_and_goes_to_billing_contacts_then_primary_then_nobody(msp, smtp):
    numbers = numbers_by_client(msp)
    result = mailing.issue_drafts(msp, "2026-12")
    to = {i["client"]: i["mail"] for i in result["invoices"]}
    assert to["cedar"]["to"] == ["books@cedarlaw.example"]  # the billing contact, not the primary
    assert to["dune"]["to"] == ["dee@dune.example"]  # no billing contact: the primary one
    assert to["elm"]["state"] == "kept" and "no contact" in to["elm"]["error"]  # issued, not mailed
    assert mailing.issue_drafts(msp, "2026-12") == {"period": "2026-12", "issued": 0, "refused": [], "invoices": []}
    again = mailing.issue_invoices(msp, [numbers["cedar"]])
    assert again["issued"] == 0 and "only a draft invoice can be issued" in again["refused"][0]["error"]

    outbox.send_due(msp)
    assert sorted(m["To"] for m in received(smtp, "invoice")) == sorted(
        i["mail"]["to"][0] for i in result["invoices"] if i["mail"]["state"] == "waiting"
    )
    with pytest.raises(TenureError, match="client elm \\(Elm Bakery\\) has no contact with an e-mail address"):
        mailing.send_again(msp, numbers["elm"])
    with pytest.raises(TenureError, match="void; only an issued or paid invoice is sent"):
        change_status(msp, numbers["dune"], "void")
        mailing.send_again(msp, numbers["dune"])


def test_a_draft_is_not_mailed_and_a_failed_issue_mails_nothing(msp, smtp, monkeypatch):
    cedar = numbers_by_client(msp)["cedar"]
    with pytest.raises(TenureError, match="only an issued or paid invoice is sent"):
        mailing.send_again(msp, cedar)

    def broken(s, invoice):
        raise RuntimeError("the mail could not be recorded")

    monkeypatch.setattr(mailing, "on_issue", broken)
    with pytest.raises(RuntimeError):
        change_status(msp, cedar, "issue")
    monkeypatch.undo()
    assert [i for i in numbers_by_client(msp).values()] and list_notices(msp, kind="invoice") == []
    from tenure.billing.service import get_invoice

    assert get_invoice(msp, cedar)["status"] == "draft"  # the issue and its mail: both or neither


# ---------------------------------------------------------------------------------------- reminders


def test_one_overdue_reminder_per_step_then_none_after_payment(msp, smtp):
    numbers = numbers_by_client(msp)
    mailing.issue_invoices(msp, [numbers["cedar"], numbers["dune"]])
    outbox.send_due(msp)
    assert len(received(smtp, "invoice")) == 2

    clock.set_now("2026-12-11T18:00:00Z")  # due today: not overdue
    assert mailing.send_reminders(msp) == 0
    clock.set_now("2026-12-12T18:00:00Z")  # 1 day past due
    assert mailing.send_reminders(msp) == 2
    assert mailing.send_reminders(msp) == 0  # each reminder once
    outbox.send_due(msp)
    reminders = received(smtp, "invoice_reminder")
    assert sorted(m["To"] for m in reminders) == ["books@cedarlaw.example", "dee@dune.example"]
    assert all(pdf_of(m)[1].startswith(b"%PDF") for m in reminders)
    assert "1 day ago" in reminders[0].get_body(("plain",)).get_content()

    change_status(msp, numbers["cedar"], "pay")
    clock.set_now("2026-12-18T18:00:00Z")  # 7 days past due: only the unpaid one is reminded
    assert mailing.send_reminders(msp) == 1
    change_status(msp, numbers["dune"], "pay")  # paid before the reminder went: it is not sent
    outbox.send_due(msp)
    clock.set_now("2026-12-30T18:00:00Z")
    assert mailing.send_reminders(msp) == 0
    outbox.send_due(msp)
    assert len(received(smtp, "invoice_reminder")) == 2
    [kept] = [n for n in list_notices(msp, kind="invoice_reminder") if n["state"] == "kept"]
    assert "paid before the reminder went" in kept["error"]


def test_reminder_days_are_a_setting_and_a_stopped_worker_sends_only_the_latest(msp, smtp):
    edited = edit_settings(msp, {"reminder_days": "10, 3"})
    assert edited["reminder_days"] == [3, 10] and get_settings(msp)["reminder_days"] == [3, 10]
    assert export_book(msp)["msp"]["reminder_days"] == [3, 10]
    with pytest.raises(ValidationFailed, match="from 1 to 365"):
        edit_settings(msp, {"reminder_days": [0, 7]})
    dune = numbers_by_client(msp)["dune"]
    mailing.issue_invoices(msp, [dune])
    clock.set_now("2026-12-25T18:00:00Z")  # 14 days past due, the worker never ran since: one reminder
    assert mailing.send_reminders(msp) == 1 and mailing.send_reminders(msp) == 0
    assert [(m["kind"], m["days"]) for m in mailing.mail_history(msp, dune)] == [("issued", None), ("reminder", 10)]
    edit_settings(msp, {"reminder_days": []})  # none at all
    clock.set_now("2027-01-30T18:00:00Z")
    assert mailing.send_reminders(msp) == 0


def test_the_worker_once_sends_the_due_reminder(msp, smtp, cli):
    dune = numbers_by_client(msp)["dune"]
    mailing.issue_invoices(msp, [dune])
    env = {k: os.environ[k] for k in ("TENURE_SMTP_URL", "TENURE_MAIL_FROM", "TENURE_SECRET_KEY")}
    ran = cli("worker", "--once", "--now", "2026-12-12T18:00:00Z", env=env)
    assert "invoice_reminders: 1" in ran.stderr + ran.stdout
    kinds = sorted(m["X-Tenure-Notice"].split()[1] for m in received(smtp) if "dune" in m["To"])
    assert kinds == ["invoice", "invoice_reminder"]


# ---------------------------------------------------------------------------------------- statements


def test_a_statement_shows_open_invoices_payments_and_the_balance(msp, smtp):
    numbers = numbers_by_client(msp)
    mailing.issue_drafts(msp, "2026-12")
    clock.set_now("2026-12-05T15:00:00Z")
    change_status(msp, numbers["acme"], "pay")
    clock.set_now("2026-12-20T15:00:00Z")
    acme = mailing.statement(msp, "acme")
    assert acme["open"] == [] and acme["balance"] == "0.00"
    assert acme["payments"] == [{"number": numbers["acme"], "paid_on": "2026-12-05", "amount": "4800.00"}]
    cedar = mailing.statement(msp, "cedar")
    assert [(i["number"], i["total"], i["days_overdue"]) for i in cedar["open"]] == [(numbers["cedar"], "400.00", 9)]
    assert cedar["balance"] == "400.00" and cedar["overdue"] == "400.00" and cedar["date"] == "2026-12-20"

    sent = mailing.send_statement(msp, "cedar")
    assert sent["mail"]["to"] == ["books@cedarlaw.example"]
    outbox.send_due(msp)
    [message] = received(smtp, "statement")
    name, pdf = pdf_of(message)
    assert name == "statement-cedar-2026-12-20.pdf" and pdf.startswith(b"%PDF")
    assert "$400.00" in message.get_body(("plain",)).get_content()
    with pytest.raises(TenureError, match="client elm"):
        mailing.send_statement(msp, "elm")


def billed() -> st.SearchStrategy[rules.Billed]:
    day = st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    return st.builds(
        lambda n, d, terms, status, cents, paid_after: rules.Billed(
            number=f"2026-{n:05d}",
            date=d,
            due_date=d + dt.timedelta(days=terms),
            status=status,
            total=Decimal(cents) / 100,
            paid_on=d + dt.timedelta(days=paid_after) if status == "paid" else None,
        ),
        st.integers(1, 99999),
        day,
        st.integers(0, 60),
        st.sampled_from(["issued", "paid", "void"]),
        st.integers(-50_000, 500_000),
        st.integers(0, 90),
    )


@given(st.lists(billed(), max_size=30), st.dates(dt.date(2026, 1, 1), dt.date(2027, 6, 30)), st.integers(0, 400))
def test_the_balance_is_what_was_invoiced_and_not_paid_or_voided(invoices, today, back):
    since = today - dt.timedelta(days=back)
    found = rules.account(invoices, today, since)
    assert found.balance == sum((b.total for b in invoices if b.status == "issued"), Decimal(0))
    assert found.overdue == sum((b.total for b in found.open if b.due_date < today), Decimal(0))
    assert all(b.status == "issued" for b in found.open) and len(found.open) == sum(
        b.status == "issued" for b in invoices
    )
    assert all(b.paid_on is not None and since <= b.paid_on <= today for b in found.payments)
    assert [b.date for b in found.open] == sorted(b.date for b in found.open)


@given(
    st.lists(st.integers(1, 60), max_size=6),
    st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
    st.lists(st.integers(1, 80), min_size=1, max_size=15),
)
def test_reminders_each_go_once_in_order_however_often_the_worker_runs(steps, due, gaps):
    """A worker checking on arbitrary days: every reminder it sends is a step reached that day, later than
    the last one sent; checking every day sends every step exactly once."""
    last, sent, day = None, [], due
    for gap in gaps:
        day += dt.timedelta(days=gap)
        days = rules.reminder_due(due, day, steps, last)
        assert rules.reminder_due(due, day, steps, days if days is not None else last) is None  # twice: never
        if days is not None:
            assert days in steps and days <= (day - due).days and (last is None or days > last)
            sent.append(days)
            last = days
    assert sent == sorted(set(sent))
    daily, last = [], None
    for n in range(0, 90):
        days = rules.reminder_due(due, due + dt.timedelta(days=n), steps, last)
        if days is not None:
            daily.append(days)
            last = days
    assert daily == sorted(set(steps))


# ------------------------------------------------------------------------------------ API and command line


@pytest.fixture
def http(msp, monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    token, _ = create_token(msp, "books", "bookkeeper")
    with TestClient(create_app(msp)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def test_the_api_issues_sends_and_shows_statements(msp, smtp, http):
    numbers = numbers_by_client(msp)
    one = http.post(f"/api/v1/invoices/{numbers['cedar']}/issue")
    assert one.status_code == 200 and one.json()["status"] == "issued"
    assert one.json()["mail"]["to"] == ["books@cedarlaw.example"]
    bulk = http.post("/api/v1/invoices/issue", json={"period": "2026-12"})
    assert bulk.status_code == 200 and bulk.json()["issued"] == len(numbers) - 1
    assert http.post("/api/v1/invoices/issue", json={}).status_code == 422
    again = http.post(f"/api/v1/invoices/{numbers['cedar']}/send")
    assert again.status_code == 200 and again.json()["mail"]["state"] == "waiting"
    refused = http.post(f"/api/v1/invoices/{numbers['elm']}/send")
    assert refused.status_code == 422 and "client elm" in refused.json()["detail"]
    outbox.send_due(msp)
    assert len([m for m in received(smtp, "invoice") if m["To"] == "books@cedarlaw.example"]) == 2

    shown = http.get("/api/v1/clients/cedar/statement")
    assert shown.status_code == 200 and shown.json()["balance"] == "400.00"
    pdf = http.get("/api/v1/clients/cedar/statement.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    negotiated = http.get("/api/v1/clients/cedar/statement", headers={"Accept": "application/pdf"})
    assert negotiated.content.startswith(b"%PDF")
    assert http.get("/api/v1/clients/nobody/statement").status_code == 404
    mailed = http.post("/api/v1/clients/cedar/statement/send")
    assert mailed.status_code == 200 and mailed.json()["mail"]["to"] == ["books@cedarlaw.example"]


def test_the_command_line_issues_several_all_drafts_and_sends_again(msp, cli, tmp_path):
    numbers = numbers_by_client(msp)
    now = ["--now", ISSUE_DAY]
    two = json.loads(cli("invoice", "issue", numbers["cedar"], numbers["dune"], "--json", *now).stdout)
    assert two["issued"] == 2 and {i["mail"]["to"][0] for i in two["invoices"]} == {
        "books@cedarlaw.example",
        "dee@dune.example",
    }
    rest = cli("invoice", "issue", "--period", "2026-12", "--all-drafts", *now)
    assert f"invoice {numbers['elm']} (elm, 100.00) issued; not mailed" in rest.stderr
    twice = cli("invoice", "issue", numbers["cedar"], *now, check=False)
    assert twice.returncode == 1 and "only a draft invoice can be issued" in twice.stderr
    assert cli("invoice", "issue", *now, check=False).returncode != 0  # nothing named: a usage error
    sent = json.loads(cli("invoice", "send", numbers["cedar"], "--json", *now).stdout)
    assert sent["mail"]["to"] == ["books@cedarlaw.example"]
    refused = cli("invoice", "send", numbers["elm"], *now, check=False)
    assert refused.returncode == 1 and "client elm (Elm Bakery) has no contact" in refused.stderr

    pdf = tmp_path / "cedar.pdf"
    shown = json.loads(cli("invoice", "statement", "cedar", "--pdf", str(pdf), "--json", *now).stdout)
    assert shown["balance"] == "400.00" and pdf.read_bytes().startswith(b"%PDF")
    mailed = json.loads(cli("invoice", "statement", "cedar", "--send", "--json", *now).stdout)
    assert mailed["mail"]["state"] == "waiting"


# ------------------------------------------------------------------------------------------------ pages


def test_the_pages_issue_a_runs_drafts_send_again_and_show_the_statement(msp, smtp, monkeypatch):
    from tenure.accounts.users import create_user, log_in
    from tenure.web.routes import SESSION_COOKIE

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    create_user(msp, "bea", "a long enough password", "bookkeeper")
    opened = log_in(msp, "bea", "a long enough password", "127.0.0.1")
    http = TestClient(create_app(msp), base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
    numbers = numbers_by_client(msp)

    drafts = http.get("/billing?period=2026-12&status=draft")
    assert "Issue all drafts of this run (2026-12)" in drafts.text
    issued = http.post("/billing/issue-drafts", data={"csrf": opened.csrf, "period": "2026-12"})
    assert f"{len(numbers)} invoice(s) issued and mailed (1 not mailed: no contact address)" in issued.text
    page = http.get(f"/invoices/{numbers['cedar']}")
    assert 'id="invoice-send"' in page.text and "books@cedarlaw.example" in page.text and "on issue" in page.text
    again = http.post(f"/invoices/{numbers['cedar']}/send", data={"csrf": opened.csrf})
    assert "mailed to books@cedarlaw.example" in again.text and "sent again" in again.text
    outbox.send_due(msp)
    assert len([m for m in received(smtp, "invoice") if m["To"] == "books@cedarlaw.example"]) == 2

    client = http.get("/clients/cedar?tab=invoices")
    assert 'href="/clients/cedar/statement"' in client.text
    statement = http.get("/clients/cedar/statement")
    assert 'id="statement-balance">400.00<' in statement.text and numbers["cedar"] in statement.text
    assert http.get("/clients/cedar/statement.pdf").content.startswith(b"%PDF")
    mailed = http.post("/clients/cedar/statement/send", data={"csrf": opened.csrf})
    assert "statement; mailed to books@cedarlaw.example" in mailed.text

"""Issue 19, "checks that tell the truth": end to end on the fake Tactical RMM (a real HTTP server that answers as
Tactical does), a real SMTP server (aiosmtpd) for what the outbox sends, and real restic for the backup
hand-over.

- agents uninstalled on their machines (group policy, by hand) stay listed by Tactical, offline, until their
  records are deleted: each one's silence is confirmed, its record deleted, then the client;
- the exit check fails while the final invoice is a draft and passes once it is issued and sent; the final
  reports and the service desk's notice are checked as sent; systems management says how it is known;
- no maintenance ticket opens for the client once the owner approved;
- a run's state is the same in the list, on its page and in the status command.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenure.accounts import users
from tenure.accounts.users import create_user, log_in
from tenure.api.app import create_app
from tenure.billing import mailing
from tenure.billing.models import Invoice
from tenure.book.service import import_book
from tenure.clients.accounts import set_secret
from tenure.clients.models import Client
from tenure.connectors import restic
from tenure.connectors.registry import set_handover
from tenure.maintenance import service as maintenance
from tenure.notices import outbox
from tenure.offboarding import reports, service
from tenure.offboarding.models import OffboardingRun
from tenure.triage.models import Ticket
from tenure.web import queries
from tenure.web.routes import SESSION_COOKIE
from tests.fakes.tacticalrmm import AGENT_IDS, FakeTacticalRMM, acme_book, running, seed_acme
from tests.test_offboarding_runner import T0, at, options, step
from tests.test_outbox import Server, free_port

if shutil.which("restic") is None:
    pytest.fail("restic is not installed: apt-get install restic", pytrace=False)

DC01, WS01 = AGENT_IDS["acme-dc01"], AGENT_IDS["acme-ws01"]
ANSWERS = {
    "end_of_service": "2026-12-15",
    "reason": "client_cancelled",
    "access": "full",
    "agent_deployment": "group_policy",
    "moving_to": "own_it",
    "new_contact": {"name": "Jo Smith", "email": "jo@acmedental.example"},
    "closeout": {"date": "2026-12-01", "attended": ["Jo Smith"], "notes": "handover agreed"},
}


@pytest.fixture
def rmm() -> Iterator[FakeTacticalRMM]:
    with running() as server:
        yield server


@pytest.fixture
def smtp(monkeypatch):
    server = Server(free_port())
    monkeypatch.setenv("TENURE_SMTP_URL", f"smtp://127.0.0.1:{server.port}")
    monkeypatch.setenv("TENURE_MAIL_FROM", "desk@example-it.example")
    monkeypatch.setenv("TENURE_STAFF_EMAIL", "servicedesk@example-it.example")
    monkeypatch.setenv("TENURE_SECRET_KEY", "test-secret-key-for-signed-links-0123456789")
    server.start()
    yield server
    server.stop()


def start(db: Any, rmm: FakeTacticalRMM, devices: int, answers: dict[str, Any], **book: Any) -> dict[str, Any]:
    seed_acme(rmm, devices)
    import_book(db, acme_book(rmm.url, devices, features=("patching", "automated_tasks"), siem=False, **book))
    at(T0)
    return service.apply(db, "acme", answers, options=options(rmm))


def to_the_uninstall(db: Any, rmm: FakeTacticalRMM, devices: int, answers: dict[str, Any]) -> dict[str, Any]:
    """Approved, features and checks gone, the two hours waited: the agents are next."""
    start(db, rmm, devices, answers, backup=False)
    service.answer(db, "approve", "acme", "p3.approval", "end of service confirmed")
    service.apply(db, "acme", None, options=options(rmm))
    at(T0 + timedelta(hours=2, minutes=1))
    return service.apply(db, "acme", None, options=options(rmm))


def agent_deletes(rmm: FakeTacticalRMM, agent: str) -> int:
    return rmm.requests[("DELETE", f"/agents/{agent}/")]


# ------------------------------------------------------------------- agents offline, then deleted


def test_group_policy_agents_are_confirmed_silent_then_deleted_then_the_client(db, rmm):
    status = to_the_uninstall(db, rmm, 2, ANSWERS)
    assert "p3.gpo-uninstall" in status["waiting_on"]

    # the GPO removes the agent from DC01 at its restart; WS01 has not restarted yet
    ticked = T0 + timedelta(hours=2, minutes=30)
    rmm.uninstall_on_machine(DC01, at=ticked - timedelta(minutes=10))
    at(ticked)
    service.answer(db, "done", "acme", "p3.gpo-uninstall", "GPO set to remove the agent; computers restarted")
    rmm.now = ticked + timedelta(minutes=10)
    status = service.apply(db, "acme", None, options=options(rmm))

    # Tactical still lists both agents: DC01 offline, so it is confirmed and its record deleted...
    dc01 = step(status, "p3.uninstall-verify.acme-dc01")
    assert dc01["state"] == "done" and dc01["result"]["status"] == "offline"
    assert "before its uninstall" in dc01["result"]["detail"]
    assert step(status, "p3.agent-delete.acme-dc01")["state"] == "done" and agent_deletes(rmm, DC01) == 1
    # ...WS01 still reports: not confirmed, not deleted, and the client is not touched
    ws01 = step(status, "p3.uninstall-verify.acme-ws01")
    assert ws01["state"] == "waiting" and ws01["waiting_on"] == "clock" and "still online" in ws01["error"]
    assert step(status, "p3.agent-delete.acme-ws01")["state"] == "pending" and agent_deletes(rmm, WS01) == 0
    assert rmm.requests[("DELETE", "/clients/7/")] == 0 and 7 in rmm.clients
    assert [a["agent_id"] for a in rmm.live_agents(7)] == [WS01] and status["state"] == "waiting"

    # a technician uninstalls it at the desk and says so: its record goes, then the client
    rmm.uninstall_on_machine(WS01)
    status, _ = service.answer(db, "done", "acme", "p3.uninstall-verify.acme-ws01", "uninstalled at the desk")
    status = service.apply(db, "acme", None, options=options(rmm))
    assert step(status, "p3.agent-delete.acme-ws01")["state"] == "done" and agent_deletes(rmm, WS01) == 1
    assert rmm.agents == {} and 7 in rmm.clients  # the client goes once the deployment GPO is cleaned up
    service.answer(db, "done", "acme", "p3.gpo-cleanup", "GPO deleted, installer removed from the share")
    status = service.apply(db, "acme", None, options=options(rmm))
    assert step(status, "p3.rmm-remove.acme-rmm")["state"] == "done"
    assert rmm.agents == {} and rmm.clients == {} and rmm.requests[("DELETE", "/clients/7/")] == 1
    assert status["state"] == "waiting" and status["problem"] is None  # never `failed`


def test_an_agent_that_reported_after_its_uninstall_is_not_taken_for_gone(db, rmm):
    to_the_uninstall(db, rmm, 1, ANSWERS)
    ticked = T0 + timedelta(hours=2, minutes=30)
    at(ticked)
    service.answer(db, "done", "acme", "p3.gpo-uninstall", "GPO set")
    rmm.uninstall_on_machine(DC01, at=ticked + timedelta(minutes=5))  # it was still alive after the tick
    rmm.now = ticked + timedelta(minutes=15)
    status = service.apply(db, "acme", None, options=options(rmm))
    verify = step(status, "p3.uninstall-verify.acme-dc01")
    assert verify["state"] == "waiting" and "after its uninstall" in verify["error"]
    assert agent_deletes(rmm, DC01) == 0 and DC01 in rmm.agents


def test_a_manual_uninstall_on_each_machine_is_confirmed_and_its_record_deleted(db, rmm):
    status = to_the_uninstall(db, rmm, 1, {**ANSWERS, "agent_deployment": "manual"})
    uninstall = step(status, "p3.uninstall.acme-dc01")
    assert uninstall["kind"] == "manual" and "p3.uninstall.acme-dc01" in status["waiting_on"]
    assert agent_deletes(rmm, DC01) == 0  # Tenure does not uninstall what was installed by hand

    ticked = T0 + timedelta(hours=3)
    rmm.uninstall_on_machine(DC01, at=ticked - timedelta(minutes=45))  # overdue by the time it is checked
    at(ticked)
    service.answer(db, "done", "acme", "p3.uninstall.acme-dc01", "uninstalled through a remote session")
    rmm.now = ticked + timedelta(minutes=1)
    status = service.apply(db, "acme", None, options=options(rmm))
    assert step(status, "p3.uninstall-verify.acme-dc01")["result"]["status"] == "overdue"
    assert step(status, "p3.agent-delete.acme-dc01")["state"] == "done" and agent_deletes(rmm, DC01) == 1
    assert step(status, "p3.rmm-remove.acme-rmm")["state"] == "done" and rmm.clients == {}


# ------------------------------------------------------------------------------ the exit check


@pytest.fixture
def repos(tmp_path) -> tuple[restic.Repository, restic.Repository]:
    ours = restic.Repository(str(tmp_path / "msp-repo"), "msp-secret")
    restic.init(ours)
    data = tmp_path / "data"
    data.mkdir()
    (data / "ledger.xlsx").write_bytes(b"numbers" * 1000)
    restic.run(ours, "backup", str(data), "--host", "ACME-DC01", "--tag", "acme")
    return ours, restic.Repository(str(tmp_path / "acme-copy"), "client-secret")


def person_round(db: Any, status: dict[str, Any], opts: Any, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every step waiting on a person answered, the outbox sent, what is due run."""
    for _ in range(10):
        waiting = [k for k in status["waiting_on"] if k not in keep]
        if not waiting:
            break
        for key in waiting:
            verb = "approve" if step(status, key)["kind"] == "approval" else "done"
            status, _ = service.answer(db, verb, "acme", key, f"{key}: done by hand")
        outbox.send_due(db)
        status = service.apply(db, "acme", None, options=opts)
    return status


def test_the_exit_check_fails_on_a_draft_final_invoice_and_passes_once_it_is_issued_and_sent(db, rmm, smtp, repos):
    ours, theirs = repos
    opts = options(rmm)
    seed_acme(rmm)
    book = acme_book(rmm.url, features=("patching", "automated_tasks"), siem=False)
    acme = book["clients"][0]
    acme["accounts"].append({"key": "acme-backup", "kind": "backup", "vendor": "restic", "external_id": ours.location})
    acme["backup_jobs"] = [{**acme["backup_jobs"][0], "product": "restic", "name": "DC01 files"}]
    import_book(db, book)
    set_secret(db, "acme-backup", ours.password)
    set_handover(db, "acme-backup", theirs.location, theirs.password, tag="acme")
    with db.unit_of_work() as s:
        acme_id = s.scalars(select(Client.id).where(Client.key == "acme")).one()
        s.add(Ticket(client_id=acme_id, kind="incident", status="new", title="Printer jams", opened_at=T0))
    at(T0)
    status = service.apply(db, "acme", {**ANSWERS, "agent_deployment": "unknown"}, options=options(rmm))
    outbox.send_due(db)
    status = person_round(db, status, opts, keep=("p7.lessons",))
    at(T0 + timedelta(hours=2, minutes=1))
    status = person_round(db, service.apply(db, "acme", None, options=opts), opts, keep=("p7.lessons",))
    assert step(status, "p4.handover-verify.acme-backup")["state"] == "done"  # restic: copied and checked
    assert rmm.agents == {} and rmm.clients == {}

    # `tenure offboard lessons` completes the lessons-learned step, and the exit check runs
    recorded = reports.record_lessons(db, "acme", ["price"], "offer a smaller managed tier")
    assert recorded["step"] == "acme: p7.lessons done"
    outbox.send_due(db)
    status = service.apply(db, "acme", None, options=options(rmm))
    verify = step(status, "p7.verify")
    conditions = verify["result"]["conditions"]
    assert verify["state"] == "waiting" and status["state"] == "waiting"
    invoice = conditions["final_invoice_sent"]
    assert invoice["ok"] is False and "is a draft" in invoice["detail"]
    assert [name for name, c in conditions.items() if not c["ok"]] == ["final_invoice_sent"]

    # the reports and the service desk's notice were checked as sent (by the outbox, through real SMTP)
    assert "p1.asset-report sent" in conditions["final_reports_sent"]["detail"]
    assert "p6.health-report sent" in conditions["final_reports_sent"]["detail"]
    assert "p6.tickets sent" in conditions["service_desk_told"]["detail"]
    desk = [m for _, m in smtp.inbox.received if m["To"] == "servicedesk@example-it.example"]
    assert len(desk) == 1 and "Printer jams" in desk[0].get_body().get_content()
    assert "handed over to Jo Smith" in desk[0].get_body().get_content()
    with db.reader() as s:
        assert s.scalars(select(Ticket.status)).all() == ["closed"]
    # systems management: how it is known
    agents = conditions["no_agents_reporting"]["known_by"]
    assert agents["source"] == "rmm" and agents["rmm"] == ["tacticalrmm (acme-rmm)"] and agents["ticked"] == []

    # issued: still not enough until the mail is out
    with db.reader() as s:
        number = s.scalars(select(Invoice.number).where(Invoice.kind == "final")).one()
    mailing.issue_invoices(db, [number])
    service.answer(db, "retry", "acme", "p7.verify")
    status = service.apply(db, "acme", None, options=options(rmm))
    detail = step(status, "p7.verify")["result"]["conditions"]["final_invoice_sent"]["detail"]
    assert status["state"] == "waiting" and "not sent" in detail
    outbox.send_due(db)
    service.answer(db, "retry", "acme", "p7.verify")
    status = service.apply(db, "acme", None, options=options(rmm))
    assert status["state"] == "done", step(status, "p7.verify")["error"]
    conditions = step(status, "p7.verify")["result"]["conditions"]
    assert all(c["ok"] for c in conditions.values()) and "sent" in conditions["final_invoice_sent"]["detail"]

    # the owner's report: no vendor account listed active after this verified run
    report = reports.offboarding_report(db)
    [row] = report["former_clients"]
    assert row["issues"]["vendor_accounts_active"] == [], row["issues"]


# ------------------------------------------------------------------------------ maintenance


def test_no_maintenance_ticket_opens_after_approval(db, rmm):
    start(db, rmm, 1, ANSWERS, backup=False)
    due = maintenance.run_due(db, ["acme"], dry_run=True)
    assert len(due.items) >= 5  # the default managed plan is live for acme (seven tickets opened before)
    service.answer(db, "approve", "acme", "p3.approval", "go")
    status = service.apply(db, "acme", None, options=options(rmm))
    stop = step(status, "p6.maintenance-stop")
    assert stop["state"] == "done" and stop["result"]["stopped"] >= 5
    for days in (0, 1, 7, 31):
        at(T0 + timedelta(days=days))
        assert maintenance.run_due(db, ["acme"]).tickets_opened == 0
    with db.reader() as s:
        assert s.scalars(select(Ticket).where(Ticket.kind == "maintenance")).all() == []


# ------------------------------------------------------------------------------ one state everywhere


@pytest.fixture
def owner_browser(db, monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    at(T0)  # the session is opened when the run is (an idle session ends)
    create_user(db, "owner", "a long enough password", "owner")
    opened = log_in(db, "owner", "a long enough password", "127.0.0.1")
    return TestClient(create_app(db), base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})


def shown(db: Any, http: TestClient, run: int) -> dict[str, str]:
    listed = http.get("/offboarding")
    row = re.search(rf'href="/offboarding/{run}".*?<span class="state (\w+)"', listed.text, re.S)
    page = re.search(r'id="run-state">(\w+)<', http.get(f"/offboarding/{run}").text)
    assert row and page, listed.text[:500]
    api = next(r for r in queries.runs_page(db).items if r["run"] == run)
    return {
        "list": row.group(1),
        "page": page.group(1).lower(),  # in words on the page ("Waiting"): a run's states are one word each
        "api list": api["state"],
        "api run": queries.run_detail(db, run)["state"],
        "status command": service.status(db, "acme")["state"],
    }


def test_a_runs_state_is_the_same_in_the_list_on_its_page_and_in_the_status_command(db, rmm, owner_browser):
    status = start(db, rmm, 1, ANSWERS, backup=False)
    run = status["run"]
    assert set(shown(db, owner_browser, run).values()) == {"waiting"}
    service.answer(db, "approve", "acme", "p3.approval", "go")
    rmm.fail_next(401, 50)  # the RMM refuses the key: a step fails, the run with it
    service.apply(db, "acme", None, options=options(rmm))
    assert set(shown(db, owner_browser, run).values()) == {"failed"}

    # a run recorded without steps (history brought over, the demo's former client): `done` everywhere
    with db.unit_of_work() as s:
        acme_id = s.scalars(select(Client.id).where(Client.key == "acme")).one()
        s.add(OffboardingRun(client_id=acme_id, state="done", end_of_service=datetime(2026, 10, 1).date(),
                             reason="client_cancelled", answers={}, created_at=T0, completed_at=T0, lessons={}))
    with db.reader() as s:
        bare = max(s.scalars(select(OffboardingRun.id)))
    assert set(shown(db, owner_browser, bare).values()) == {"done"}
    page = owner_browser.get(f"/offboarding/{bare}").text
    assert "Run the steps due now" not in page  # nothing left to run, so nothing offered

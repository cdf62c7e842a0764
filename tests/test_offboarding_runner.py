"""The offboarding runner against a real database and a fake Tactical RMM (a real HTTP server): a full run
with a controlled clock, retries and backoff, refused deletes, uninstalls that never finish, a worker that
dies mid-step, and two workers sharing one run on PostgreSQL."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, update

from tenure import clock
from tenure.book.service import import_book
from tenure.clients.models import BackupJob, Client
from tenure.clients.service import list_clients
from tenure.connectors.base import CallLog
from tenure.connectors.http import HttpClients
from tenure.connectors.registry import ConnectorSettings
from tenure.connectors.tacticalrmm import TacticalRMM
from tenure.errors import TenureError
from tenure.maintenance.models import MaintenanceTask
from tenure.notices.models import Notice
from tenure.offboarding import actions, flow, service
from tenure.offboarding.models import OffboardingRun, OffboardingStep, StepAttempt
from tenure.runner import Outcome, RetryPolicy, Runner, StepContext, claim
from tenure.triage.models import Ticket
from tests.fakes.tacticalrmm import AGENT_IDS, FakeTacticalRMM, acme_book, running, seed_acme

T0 = datetime(2026, 12, 15, 15, 0, tzinfo=UTC)
ANSWERS = {
    "end_of_service": "2026-12-15",
    "reason": "client_cancelled",
    "access": "full",
    "agent_deployment": "unknown",  # Tactical uninstalls each agent (by hand: tests/test_offboarding_exit.py)
    "moving_to": "other_msp",
    "new_contact": {"name": "Ada Stone", "email": "ada@incoming-msp.example"},
    "security_account": "keep",  # the security vendor's account moves to the incoming MSP (seed 002)
    "closeout": {"date": "2026-12-01", "attended": ["Ada Stone", "Jo Smith"], "notes": "handover agreed"},
}
DC01 = AGENT_IDS["acme-dc01"]


@pytest.fixture
def fake() -> Iterator[FakeTacticalRMM]:
    with running() as server:
        yield server


def options(fake: FakeTacticalRMM, **policy: Any) -> service.Options:
    return service.Options(
        connectors=ConnectorSettings(api_keys={"tacticalrmm": fake.api_key}, backoff=0.01),
        policy=RetryPolicy(**policy),
        worker="test-worker",
    )


def at(moment: datetime) -> None:
    clock.set_now(moment)


def step(status: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in status["steps"] if s["key"] == key)


def start(db: Any, fake: FakeTacticalRMM, devices: int = 1, **book: Any) -> dict[str, Any]:
    seed_acme(fake, devices)
    import_book(db, acme_book(fake.url, devices, **book))
    at(T0)
    return service.apply(db, "acme", ANSWERS, options=options(fake))


def finish_by_hand(
    db: Any, status: dict[str, Any], opts: service.Options, keep: tuple[str, ...] = (), papers: bool = True
) -> dict[str, Any]:
    """Tick off every step waiting on a person (approvals approved) and run what follows, until none is left;
    with `papers`, the final invoice issued and what the run wrote mailed each round (`papers_out`)."""
    for _ in range(10):
        waiting = [k for k in status["waiting_on"] if k not in keep]
        if not waiting:
            break
        for key in waiting:
            verb = "approve" if step(status, key)["kind"] == "approval" else "done"
            status, _ = service.answer(db, verb, "acme", key, f"{key} done by hand")
        if papers:
            papers_out(db)
        status = service.apply(db, "acme", None, options=opts)
    return status


def papers_out(db: Any) -> None:
    """What the exit check wants sent, sent (a real SMTP server): the final invoice issued and mailed, the final
    reports and every other notice of the run through the outbox."""
    from tenure.billing import mailing
    from tenure.billing.models import Invoice
    from tenure.notices import outbox
    from tenure.notices.mailer import parse_smtp_url
    from tests.test_outbox import Server, free_port

    with db.reader() as s:
        drafts = list(s.scalars(select(Invoice.number).where(Invoice.kind == "final", Invoice.status == "draft")))
    if drafts:
        mailing.issue_invoices(db, drafts)
    server = Server(free_port()).start()
    try:
        outbox.send_due(db, parse_smtp_url(f"smtp://127.0.0.1:{server.port}", "desk@example-it.example"))
    finally:
        server.stop()


def lean(db: Any, fake: FakeTacticalRMM, devices: int = 1) -> dict[str, Any]:
    """acme with only automatic work in phase 3 (patching, tasks, checks), approved."""
    start(db, fake, devices, features=("patching", "automated_tasks"), siem=False, backup=False)
    status, _ = service.answer(db, "approve", "acme", "p3.approval")
    return status


# --------------------------------------------------------------------------------------- a full run


def test_a_full_run_with_a_controlled_clock(db, fake):
    seed_acme(fake)
    import_book(db, acme_book(fake.url))
    with db.unit_of_work() as s:
        acme_id = s.scalars(select(Client.id).where(Client.key == "acme")).one()
        s.add(Ticket(client_id=acme_id, kind="alert", status="new", title="Disk nearly full", opened_at=T0))
        s.add(MaintenanceTask(client_id=acme_id, key="patch", title="Monthly patches", schedule="RRULE:FREQ=MONTHLY"))
    at(T0)
    opts = options(fake)
    status = service.apply(db, "acme", ANSWERS, options=opts)

    # inventory and agreement closeout need no one: done at once; the rest waits on the owner
    assert status["state"] == "waiting" and status["problem"] is None
    assert step(status, "p1.snapshot")["state"] == "done"
    snapshot = step(status, "p1.snapshot")["result"]
    assert snapshot["vendors"]["acme-rmm"]["agents"][0]["agent_id"] == DC01
    assert step(status, "p2.final-invoice")["state"] == "done"
    assert step(status, "p2.final-invoice")["result"]["invoice"]
    assert step(status, "p3.approval")["state"] == "waiting" and "p3.approval" in status["waiting_on"]
    assert step(status, "p3.feature-off.acme-dc01.patching")["state"] == "pending"
    assert fake.writes() == []  # nothing destructive before the approval
    assert "1 ticket(s) were open" in step(status, "p6.tickets")["instructions"]

    with pytest.raises(TenureError, match="--reason"):
        service.answer(db, "skip", "acme", "p1.licenses", "  ")
    with pytest.raises(TenureError, match="not ready"):
        service.answer(db, "done", "acme", "p6.credentials", "too early")
    status, message = service.answer(db, "skip", "acme", "p1.licenses", "no license was bought through us")
    assert step(status, "p1.licenses")["state"] == "skipped" and "skipped" in message

    status, _ = service.answer(db, "approve", None, "p3.approval", "confirmed by phone")
    status = service.apply(db, "acme", None, options=opts)
    agent = fake.agents[DC01]
    assert agent["winupdatepolicy"]["critical"] == "ignore" and fake.agent_checks_of(DC01) == []
    assert fake.agent_tasks_of(DC01) == []
    for key in (
        "p3.feature-off.acme-dc01.patching",
        "p3.feature-off.acme-dc01.automated_tasks",
        "p3.check-delete.acme-dc01.disk_space",
        "p3.check-delete.acme-dc01.cpu",
    ):
        assert step(status, key)["state"] == "done", key
    # Tactical cannot switch managed antivirus off: a person does, after the client was told
    antivirus = step(status, "p3.feature-off.acme-dc01.antivirus")
    assert antivirus["state"] == "waiting" and antivirus["waiting_on"] == "person"
    assert "ACME-DC01" in antivirus["instructions"]
    with db.reader() as s:
        notices = {n.kind: n for n in s.scalars(select(Notice))}
    assert notices["antivirus"].to == ["jo@acmedental.example"] and "2026-12-15" in notices["antivirus"].body_text
    assert notices["vendor"].to == ["support@blumira.com"]
    assert notices["vendor"].subject.startswith("De-provisioning request: Acme Dental")
    assert "Current Blumira Edition: SIEM Pro" in notices["vendor"].body_text
    assert "ada@incoming-msp.example" in notices["vendor"].cc
    assert "ACME-DC01" in notices["handover"].body_text  # the final IT asset report

    status, _ = service.answer(db, "done", "acme", "p3.feature-off.acme-dc01.antivirus", "turned off by hand")
    wait = step(status, "p3.wait")
    assert wait["state"] == "waiting" and wait["waiting_on"] == "clock"
    assert wait["not_before"] == (T0 + timedelta(hours=2)).isoformat()

    at(T0 + timedelta(hours=1))  # the two hours are not over: nothing is uninstalled
    status = service.apply(db, "acme", None, options=opts)
    assert step(status, "p3.uninstall.acme-dc01")["state"] == "pending" and DC01 in fake.agents

    at(T0 + timedelta(hours=2, minutes=1))
    status = service.apply(db, "acme", None, options=opts)
    assert step(status, "p3.uninstall.acme-dc01")["state"] == "done"
    assert "no longer listed" in step(status, "p3.uninstall.acme-dc01")["result"]["detail"]
    assert fake.live_agents() == [] and fake.clients == {}
    assert step(status, "p3.rmm-remove.acme-rmm")["state"] == "done"

    status = finish_by_hand(db, status, opts, papers=False)
    assert step(status, "p7.verify")["error"].startswith("exit conditions not met: final_invoice_sent")
    papers_out(db)  # the final invoice issued, it and the reports mailed
    service.answer(db, "retry", "acme", "p7.verify")
    status = service.apply(db, "acme", None, options=opts)
    assert status["state"] == "done" and status["completed_at"] == (T0 + timedelta(hours=2, minutes=1)).isoformat()
    verified = step(status, "p7.verify")["result"]["conditions"]
    assert all(c["ok"] for c in verified.values()) and len(verified) == 13
    assert "asked tacticalrmm (acme-rmm)" in verified["no_agents_reporting"]["detail"]

    with db.reader() as s:
        assert s.scalars(select(Ticket.status)).all() == ["closed"]  # handed over: the desk's notice says so
        assert not any(s.scalars(select(MaintenanceTask.active).where(MaintenanceTask.client_id == acme_id)))
        assert s.scalars(select(BackupJob.status)).all() == ["retired"]
    classes = {c.key: c.klass for c in list_clients(db, clock.today())}
    assert classes["acme"] == "former"
    assert all(n == 1 for n in fake.applied.values()) and len(fake.applied) == 7
    # once done, the same answers show the finished run and do nothing
    again = service.apply(db, "acme", ANSWERS, options=opts)
    assert again["run"] == status["run"] and again["ran"] == 0


def test_other_answers_for_an_open_run_are_refused_with_the_difference(db, fake):
    start(db, fake)
    with pytest.raises(TenureError, match=r"access is 'full' there, 'none' here"):
        service.apply(db, "acme", ANSWERS | {"access": "none"}, options=options(fake))


# ----------------------------------------------------------------------------------- the runner


def test_claims_lease_due_steps_and_a_dead_workers_steps_are_taken_over_when_the_lease_ends(db, fake):
    lean(db, fake)
    first = claim(db, "w1", T0, limit=2, lease_seconds=60)
    assert [c.key for c in first] == ["p3.feature-off.acme-dc01.patching", "p3.feature-off.acme-dc01.automated_tasks"]
    assert all(c.idempotency_key == f"{c.run_id}:{c.key}" for c in first)
    during = claim(db, "w2", T0 + timedelta(seconds=30), limit=10)
    assert {c.key for c in during} == {
        "p3.check-delete.acme-dc01.disk_space",
        "p3.check-delete.acme-dc01.cpu",
        "p6.maintenance-stop",
        "p6.alerts-orphaned",
    }  # not w1's, not the uninstall
    later = claim(db, "w3", T0 + timedelta(seconds=61), limit=10)
    assert [c.key for c in later] == [c.key for c in first] and all(c.attempts == 2 for c in later)
    with db.reader() as s:
        lost = s.scalars(select(StepAttempt).where(StepAttempt.step_id == first[0].id).order_by(StepAttempt.id)).all()
    assert [(a.worker, a.outcome) for a in lost] == [("w1", "lost"), ("w3", None)]
    assert "taken over by w3" in lost[0].error


class Crash(BaseException):
    """The process dies: nothing after it runs, as with kill -9."""


def test_a_worker_killed_after_its_vendor_call_is_taken_over_and_the_call_lands_once(db, fake):
    lean(db, fake)
    opts = options(fake)
    real = partial(actions.execute, settings=opts.connectors)

    def dies_after_vendor_call(ctx: StepContext) -> Any:
        outcome = real(ctx)
        if ctx.step.action == "tacticalrmm.disable_feature":
            raise Crash
        return outcome

    doomed = Runner(db, dies_after_vendor_call, flow.advance, worker="doomed", lease_seconds=60)
    with pytest.raises(Crash):
        doomed.run_until_idle()
    key = f"{service.status(db, 'acme')['run']}:p3.feature-off.acme-dc01.patching:PUT:/agents/{DC01}/"
    assert fake.applied[key] == 1
    status = service.status(db, "acme")
    assert step(status, "p3.feature-off.acme-dc01.patching")["state"] == "running"

    at(T0 + timedelta(seconds=30))  # lease still live: nobody touches it
    service.apply(db, "acme", None, options=opts)
    assert fake.received[key] == 1
    at(T0 + timedelta(minutes=2))  # lease over: taken over, same idempotency key, applied once
    status = service.apply(db, "acme", None, options=opts)
    assert step(status, "p3.feature-off.acme-dc01.patching")["state"] == "done"
    assert fake.received[key] == 2 and fake.applied[key] == 1
    assert all(n == 1 for n in fake.applied.values())
    with db.reader() as s:
        attempts = s.execute(
            select(StepAttempt.worker, StepAttempt.outcome, StepAttempt.calls)
            .join(OffboardingStep, OffboardingStep.id == StepAttempt.step_id)
            .where(OffboardingStep.key == "p3.feature-off.acme-dc01.patching")
            .order_by(StepAttempt.id)
        ).all()
    assert [(w, o) for w, o, _ in attempts] == [("doomed", "lost"), ("test-worker", "done")]
    assert attempts[0][2][0]["method"] == "PUT" and attempts[0][2][0]["status"] == 200  # saved before it died
    assert attempts[1][2][0] == attempts[0][2][0] | {"ms": attempts[1][2][0]["ms"]}


def test_a_worker_that_keeps_calling_keeps_its_step_and_each_call_is_on_record_as_it_is_made(db, fake):
    lean(db, fake)
    seen: list[tuple[timedelta, int]] = []
    ran: list[int] = []

    def slow(ctx: StepContext) -> Outcome:
        ran.append(ctx.step.id)
        for n in range(1, 5):  # a call every 25 s: 100 s in all, past the 60-second lease it was claimed with
            at(T0 + timedelta(seconds=25 * n))
            ctx.calls.record("GET", f"/agents/?page={n}", 200)
            with db.reader() as s:
                row, attempt = s.get(OffboardingStep, ctx.step.id), s.get(StepAttempt, ctx.step.attempt_id)
                assert row is not None and row.lease_until is not None and attempt is not None
                seen.append((row.lease_until - clock.now(), len(attempt.calls)))
        return Outcome.done()

    assert Runner(db, slow, flow.advance, worker="w1", lease_seconds=60).run_once() == 1
    assert all(left > timedelta(0) for left, _ in seen)  # never open to a takeover
    assert [made for _, made in seen] == [1, 2, 3, 4]  # saved after each call, not only at the end
    with db.reader() as s:
        outcomes = s.scalars(select(StepAttempt.outcome).where(StepAttempt.step_id == ran[0])).all()
    assert outcomes == ["done"]  # finished by its worker, not lost to another


def test_a_step_working_for_longer_than_its_lease_without_a_vendor_call_is_never_taken_over(db, fake):
    """A restic copy of a large repository runs for up to an hour and calls no vendor API that would renew the
    lease: the runner keeps it for as long as the step works, so no other worker runs the copy a second time.
    Real time here, with a lease of 0.6 s and a step that works for 2 s."""
    lean(db, fake)
    clock.set_now(None)
    with db.unit_of_work() as s:  # the run was planned for now, not for T0
        s.execute(update(OffboardingStep).where(OffboardingStep.not_before.is_not(None)).values(not_before=clock.now()))
    ran: list[int] = []
    taken_by_others: set[int] = set()

    def copies_for_a_while(ctx: StepContext) -> Outcome:
        ran.append(ctx.step.id)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # meanwhile another worker looks for work every 0.1 s
            taken_by_others.update(c.id for c in claim(db, "other", clock.now(), limit=20, lease_seconds=60))
            time.sleep(0.1)
        return Outcome.done()

    assert Runner(db, copies_for_a_while, flow.advance, worker="w1", lease_seconds=0.6).run_once() == 1
    assert taken_by_others and ran[0] not in taken_by_others  # the other worker was busy, never with this step
    with db.reader() as s:
        attempts = s.execute(select(StepAttempt.worker, StepAttempt.outcome).where(StepAttempt.step_id == ran[0]))
        assert [tuple(a) for a in attempts] == [("w1", "done")]
        assert s.get(OffboardingStep, ran[0]).state == "done"


def test_the_steps_of_a_run_share_one_connection_to_the_rmm(db, fake):
    lean(db, fake, devices=2)
    connections, calls = fake.connections, sum(fake.requests.values())
    status = service.apply(db, "acme", None, options=options(fake))
    phase3 = [s for s in status["steps"] if s["key"].startswith(("p3.feature-off", "p3.check-delete"))]
    assert len(phase3) == 8 and all(s["state"] == "done" for s in phase3)
    assert sum(fake.requests.values()) - calls > 8  # several calls per step...
    assert fake.connections - connections == 1  # ...over one connection kept alive, not one per step


def test_an_uninstall_that_never_completes_fails_with_the_reason_and_the_run_stays_open(db, fake):
    fake.uninstall_delay = None
    lean(db, fake)
    opts = options(fake, max_attempts=3, backoff_seconds=60)
    service.apply(db, "acme", None, options=opts)
    moment = T0 + timedelta(hours=2, minutes=1)
    for _ in range(3):
        at(moment)
        status = service.apply(db, "acme", None, options=opts)
        moment += timedelta(hours=1)
    uninstall = step(status, "p3.uninstall.acme-dc01")
    assert uninstall["state"] == "failed" and uninstall["attempts"] == 3
    assert "gave up after 3 attempts" in uninstall["error"] and "still lists it" in uninstall["error"]
    assert "never completed" in uninstall["error"]
    assert status["state"] == "failed" and status["problem"].startswith("p3.uninstall.acme-dc01: gave up")
    assert status["completed_at"] is None and step(status, "p3.rmm-remove.acme-rmm")["state"] == "pending"
    assert {c.key: c.klass for c in list_clients(db, clock.today())}["acme"] != "former"
    delete = f"{status['run']}:p3.uninstall.acme-dc01:DELETE:/agents/{DC01}/"
    assert fake.received[delete] == 3 and fake.applied[delete] == 1

    # a technician removes it by hand and says so: the run goes on
    fake.drop_agent(DC01)
    status, _ = service.answer(db, "done", "acme", "p3.uninstall.acme-dc01", "uninstalled at the desk")
    status = service.apply(db, "acme", None, options=opts)
    assert step(status, "p3.rmm-remove.acme-rmm")["state"] == "done" and status["state"] == "waiting"


def test_a_refused_client_delete_is_retried_after_the_agents_disappear(db, fake):
    fake.add_client(7, "Acme Dental")
    fake.add_agent("STRAYxPCxNotInTenuresInventory", "STRAY-PC", 7)  # an agent nobody told Tenure about
    lean(db, fake)
    opts = options(fake)
    service.apply(db, "acme", None, options=opts)
    at(T0 + timedelta(hours=2, minutes=1))
    status = service.apply(db, "acme", None, options=opts)
    removal = step(status, "p3.rmm-remove.acme-rmm")
    assert step(status, "p3.uninstall.acme-dc01")["state"] == "done"
    assert removal["state"] == "waiting" and removal["waiting_on"] == "clock" and removal["attempts"] == 1
    assert "refuses to delete client 7 while agents remain under it: STRAY-PC" in removal["error"]

    fake.drop_agent("STRAYxPCxNotInTenuresInventory")
    at(T0 + timedelta(hours=2, minutes=2))  # the first backoff (60 s) is over
    status = service.apply(db, "acme", None, options=opts)
    assert step(status, "p3.rmm-remove.acme-rmm")["state"] == "done" and fake.clients == {}
    key = f"{status['run']}:p3.rmm-remove.acme-rmm:DELETE:/clients/7/"
    assert fake.requests[("DELETE", "/clients/7/")] == 2 and fake.received[key] == 2 and fake.applied[key] == 1


def test_429_and_5xx_are_tried_again_and_every_call_is_logged(db, fake):
    lean(db, fake)
    fake.fail_next(503)
    fake.fail_next(429)
    status = service.apply(db, "acme", None, options=options(fake))
    assert step(status, "p3.feature-off.acme-dc01.patching")["state"] == "done"
    log = service.status(db, "acme", with_attempts=True)
    calls = step(log, "p3.feature-off.acme-dc01.patching")["attempt_log"][0]["calls"]
    assert [c["status"] for c in calls] == [503, 429, 200]
    assert {c["method"] for c in calls} == {"PUT"} and all(
        c["step"] == "p3.feature-off.acme-dc01.patching" for c in calls
    )


def test_a_refused_api_key_fails_at_once_and_retry_tries_again(db, fake):
    seed_acme(fake)
    import_book(db, acme_book(fake.url, features=("patching",), siem=False, backup=False))
    at(T0)
    wrong = service.Options(connectors=ConnectorSettings(api_keys={"tacticalrmm": "wrong"}, backoff=0.01))
    status = service.apply(db, "acme", ANSWERS, options=wrong)
    assert status["state"] == "failed" and step(status, "p1.snapshot")["attempts"] == 1
    assert "refused the API key (401)" in status["problem"]
    status, _ = service.answer(db, "retry", "acme", "p1.snapshot")
    status = service.apply(db, "acme", None, options=options(fake))
    assert step(status, "p1.snapshot")["state"] == "done" and status["state"] == "waiting"


def test_exit_conditions_unmet_keep_the_run_open_until_fixed(db, fake):
    status = lean(db, fake)
    opts = options(fake, max_attempts=2)
    service.apply(db, "acme", None, options=opts)
    at(T0 + timedelta(hours=3))
    status = finish_by_hand(db, service.apply(db, "acme", None, options=opts), opts, keep=("p7.lessons",))
    with db.unit_of_work() as s:  # a ticket opened after the service desk closed out
        acme_id = s.scalars(select(Client.id).where(Client.key == "acme")).one()
        s.add(Ticket(client_id=acme_id, kind="alert", status="new", title="Printer offline", opened_at=T0))
    status, _ = service.answer(db, "done", "acme", "p7.lessons", "price")
    status = service.apply(db, "acme", None, options=opts)
    verify = step(status, "p7.verify")
    assert verify["state"] == "waiting" and "no_open_tickets: 1 open: #" in verify["error"]
    assert verify["result"]["conditions"]["no_open_tickets"]["ok"] is False
    assert status["state"] == "waiting" and status["completed_at"] is None
    at(T0 + timedelta(hours=4))
    status = service.apply(db, "acme", None, options=opts)
    assert status["state"] == "failed" and "Fix what is listed" in step(status, "p7.verify")["error"]
    with pytest.raises(TenureError, match="cannot be skipped"):
        service.answer(db, "skip", "acme", "p7.verify", "whatever")

    with db.unit_of_work() as s:
        for ticket in s.scalars(select(Ticket)):
            ticket.status = "closed"
    papers_out(db)
    service.answer(db, "retry", "acme", "p7.verify")
    status = service.apply(db, "acme", None, options=opts)
    assert status["state"] == "done"


def test_steps_of_a_vendor_tenure_can_no_longer_reach_go_to_a_person(db, fake, monkeypatch):
    lean(db, fake)  # planned while the API key was there: automatic steps
    monkeypatch.delenv("TENURE_TACTICALRMM_API_KEY", raising=False)
    status = service.apply(db, "acme", None, options=service.Options(connectors=ConnectorSettings(backoff=0.01)))
    patching = step(status, "p3.feature-off.acme-dc01.patching")
    assert patching["kind"] == "auto" and patching["state"] == "waiting" and patching["waiting_on"] == "person"
    assert "ACME-DC01" in patching["instructions"] and "Tactical RMM" in patching["instructions"]
    assert fake.writes() == []
    status, _ = service.answer(db, "done", "acme", "p3.feature-off.acme-dc01.patching", "policy set by hand")
    assert step(status, "p3.feature-off.acme-dc01.patching")["state"] == "done"


def test_ctrl_c_hands_the_step_back_at_once(db, fake):
    lean(db, fake)

    def interrupted(ctx: StepContext) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Runner(db, interrupted, flow.advance, worker="w1").run_once()
    first = claim(db, "w2", T0, limit=1)  # no lease to wait for
    assert first[0].key == "p3.feature-off.acme-dc01.patching" and first[0].attempts == 2
    with db.reader() as s:
        outcomes = s.scalars(select(StepAttempt.outcome).where(StepAttempt.step_id == first[0].id)).all()
    assert set(outcomes) == {"stopped", None}  # w1's handed back, w2's under way


def test_a_step_key_in_several_open_runs_needs_the_client(db, fake):
    start(db, fake)
    service.apply(
        db,
        "bravo",
        ANSWERS | {"moving_to": "unknown", "new_contact": None, "security_account": "unknown"},
        options=options(fake),
    )
    with pytest.raises(TenureError, match=r"open runs of acme, bravo: name the client"):
        service.answer(db, "approve", None, "p3.approval")
    status, message = service.answer(db, "approve", "bravo", "p3.approval")
    assert message == "bravo: approved p3.approval" and status["client"] == "bravo"


def test_dry_run_makes_the_reads_and_only_records_the_writes(fake):
    seed_acme(fake)
    calls = CallLog(step="p3.uninstall.acme-dc01")
    with TacticalRMM(fake.url, fake.api_key, calls=calls, dry_run=True) as rmm:
        result = rmm.uninstall_agent("7", DC01, key="1:p3.uninstall.acme-dc01")
    assert result.done and fake.writes() == [] and DC01 in fake.agents
    assert [(c["method"], c.get("dry_run", False)) for c in calls.calls] == [
        ("GET", False),
        ("PUT", True),
        ("DELETE", True),
    ]
    assert calls.calls[2]["idempotency_key"] == f"1:p3.uninstall.acme-dc01:DELETE:/agents/{DC01}/"


def test_connectors_built_from_one_pool_share_its_http_client_until_the_pool_is_closed(fake):
    seed_acme(fake)
    pool = HttpClients()
    first, second = (TacticalRMM(fake.url, fake.api_key, clients=pool) for _ in range(2))
    assert first.http is second.http and len(pool) == 1
    assert TacticalRMM(fake.url, "another-key", clients=pool).http is not first.http  # one per API key
    first.close()  # a step's connector is done: the pool's client stays for the next step
    assert [a["agent_id"] for a in second.list_agents("7")] == [DC01]
    pool.close()
    assert first.http.is_closed and len(pool) == 0
    again = TacticalRMM(fake.url, fake.api_key, clients=pool)  # a closed pool builds anew
    assert not again.http.is_closed and again.agent_listed("7", DC01)
    pool.close()


def test_policy_checks_are_left_to_the_policy_and_the_agent_leaves_it(fake):
    fake.add_client(7, "Acme Dental")
    fake.add_agent(DC01, "ACME-DC01", 7, checks=["cpuload"], policy_checks=["diskspace"])
    with TacticalRMM(fake.url, fake.api_key) as rmm:
        result = rmm.delete_check(DC01, "disk_space", key="1:p3.check-delete.acme-dc01.disk_space")
    assert result.done and result.data["policy_blocked"] == 1
    assert fake.agents[DC01]["block_policy_inheritance"] is True
    assert [c["check_type"] for c in fake.checks.values()] == ["cpuload", "diskspace"]  # the policy's stays


def test_two_workers_share_a_run_on_postgresql(db, fake):
    if db.is_sqlite:
        pytest.skip(
            "two concurrent workers need PostgreSQL (SELECT ... FOR UPDATE SKIP LOCKED); "
            "this test runs in the PostgreSQL pass of scripts/test"
        )
    lean(db, fake, devices=4)
    fake.latency = 0.02
    opts = options(fake)
    runners = [service.runner(db, service.Options(connectors=opts.connectors, worker=f"w{i}")) for i in range(2)]
    errors: list[BaseException] = []

    def work(runner: Runner) -> None:
        try:
            runner.run_until_idle()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(work, r)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with db.reader() as s:
        rows = s.execute(
            select(OffboardingStep.key, OffboardingStep.state, OffboardingStep.attempts, StepAttempt.worker)
            .join(StepAttempt, StepAttempt.step_id == OffboardingStep.id)
            .where(OffboardingStep.key.like("p3.%"), OffboardingStep.kind == "auto")
        ).all()
        run_state = s.scalars(select(OffboardingRun.state)).one()
    phase3 = [r for r in rows if r.key.startswith(("p3.feature-off", "p3.check-delete"))]
    assert len(phase3) == 16 and all(r.state == "done" and r.attempts == 1 for r in phase3)
    assert {r.worker for r in phase3} == {"w0", "w1"}  # both took a share
    assert all(n == 1 for n in fake.received.values()) and all(n == 1 for n in fake.applied.values())
    assert run_state == "waiting"

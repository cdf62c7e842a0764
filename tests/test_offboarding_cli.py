"""`tenure offboard` as a user drives it: subprocesses against the test database and a fake Tactical RMM
(a real HTTP server), `--now` for the clock, and a `kill -9` in the middle of a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from tenure import clock
from tenure.book.service import import_book
from tenure.connectors.registry import ConnectorSettings
from tenure.offboarding import service
from tenure.offboarding.models import OffboardingRun, OffboardingStep, StepAttempt
from tests.fakes.tacticalrmm import AGENT_IDS, FakeTacticalRMM, acme_book, running, seed_acme
from tests.test_offboarding_runner import papers_out

T0 = datetime(2026, 12, 15, 15, 0, tzinfo=UTC)
ANSWERS = {
    "end_of_service": "2026-12-15",
    "reason": "client_cancelled",
    "access": "full",
    "agent_deployment": "unknown",  # Tactical uninstalls each agent (by hand: tests/test_offboarding_exit.py)
    "moving_to": "own_it",
    "new_contact": {"name": "Jo Smith", "email": "jo@acmedental.example"},
    "closeout": {"date": "2026-12-01", "attended": ["Jo Smith"], "notes": "handover agreed"},
}
KINDS = {"auto", "manual", "approval", "wait", "notice", "verify"}
STATES = {"pending", "running", "waiting", "done", "skipped", "failed"}


@pytest.fixture
def fake() -> Iterator[FakeTacticalRMM]:
    with running() as server:
        yield server


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def world(db: Any, fake: FakeTacticalRMM, tmp_path: Path, devices: int = 1) -> tuple[Path, dict[str, str]]:
    """acme in the database and in the fake RMM; the answers file; the environment the CLI needs."""
    seed_acme(fake, devices)
    import_book(db, acme_book(fake.url, devices, features=("patching", "automated_tasks"), siem=False, backup=False))
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(ANSWERS))
    return answers, {"TENURE_TACTICALRMM_API_KEY": fake.api_key}


def in_process(fake: FakeTacticalRMM) -> service.Options:
    return service.Options(connectors=ConnectorSettings(api_keys={"tacticalrmm": fake.api_key}, backoff=0.01))


def step(status: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in status["steps"] if s["key"] == key)


def test_plan_as_json_and_as_a_table_writes_nothing(cli, db, fake, tmp_path):
    answers, env = world(db, fake, tmp_path)
    plan = json.loads(cli("offboard", "plan", "acme", "--answers", str(answers), "--json", env=env).stdout)
    assert plan["client"] == "acme" and {s["kind"] for s in plan["steps"]} <= KINDS
    assert all(
        {"key", "phase", "title", "kind", "depends_on", "target", "instructions"} <= set(s) for s in plan["steps"]
    )
    assert (
        step(plan, "p3.wait")["seconds"] == 7200 and step(plan, "p3.feature-off.acme-dc01.patching")["kind"] == "auto"
    )
    table = cli("offboard", "plan", "acme", "--answers", str(answers), env=env).stdout
    assert "Phase 1: Inventory" in table and "Phase 7: Lessons learned" in table and "p7.verify" in table
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(OffboardingRun)) == 0  # the plan writes nothing


def test_apply_starts_the_run_and_after_the_approval_returns_on_the_two_hour_wait(cli, db, fake, tmp_path):
    answers, env = world(db, fake, tmp_path)
    started = json.loads(
        cli("--now", iso(T0), "offboard", "apply", "acme", "--answers", str(answers), "--json", env=env).stdout
    )
    assert started["state"] == "waiting" and "p3.approval" in started["waiting_on"]
    assert all(s["state"] in STATES and isinstance(s["attempts"], int) for s in started["steps"])
    assert step(started, "p1.snapshot")["state"] == "done" and step(started, "p1.snapshot")["attempts"] == 1
    assert fake.writes() == []  # nothing destructive before the owner approves

    cli("offboard", "approve", "acme", "p3.approval", "--now", iso(T0), env=env)
    after = json.loads(cli("offboard", "apply", "acme", "--now", iso(T0), "--json", env=env).stdout)
    assert step(after, "p3.check-delete.acme-dc01.cpu")["state"] == "done"
    assert fake.agent_checks_of(AGENT_IDS["acme-dc01"]) == [] and fake.agent_tasks_of(AGENT_IDS["acme-dc01"]) == []
    wait = step(after, "p3.wait")
    assert after["state"] == "waiting" and wait["state"] == "waiting" and wait["waiting_on"] == "clock"
    assert wait["not_before"] == (T0 + timedelta(hours=2)).isoformat() and after["next_at"] == wait["not_before"]
    assert step(after, "p3.uninstall.acme-dc01")["state"] == "pending" and fake.live_agents() != []


def test_apply_two_hours_later_continues_the_run(cli, db, fake, tmp_path):
    _, env = world(db, fake, tmp_path)
    clock.set_now(T0)
    service.apply(db, "acme", ANSWERS, options=in_process(fake))
    service.answer(db, "approve", "acme", "p3.approval")
    service.apply(db, "acme", None, options=in_process(fake))
    later = cli("offboard", "apply", "acme", "--now", iso(T0 + timedelta(hours=2, minutes=1)), env=env)
    assert "Phase 3: Systems management deactivation" in later.stdout and "p3.uninstall.acme-dc01" in later.stdout
    assert "run is waiting" in later.stderr
    status = service.status(db, "acme")
    assert step(status, "p3.uninstall.acme-dc01")["state"] == "done" and fake.live_agents() == []
    assert step(status, "p3.rmm-remove.acme-rmm")["state"] == "done" and fake.clients == {}


def test_done_and_skip_answer_a_step_and_skip_needs_a_reason(cli, db, fake, tmp_path):
    _, env = world(db, fake, tmp_path)
    clock.set_now(T0)
    service.apply(db, "acme", ANSWERS, options=in_process(fake))
    refused = cli("offboard", "skip", "acme", "p1.licenses", check=False, env=env)
    assert refused.returncode != 0 and refused.stderr.strip().splitlines() == [
        "error: skip needs --reason TEXT: say why p1.licenses is not done"
    ]
    ticked = json.loads(cli("offboard", "done", "p1.licenses", "--note", "listed", "--json", env=env).stdout)
    licenses = step(ticked, "p1.licenses")
    assert licenses["state"] == "done" and licenses["note"] == "listed" and licenses["done_by"].startswith("cli:")
    skipped = json.loads(
        cli("offboard", "skip", "acme", "p6.tickets", "--reason", "no ticket open", "--json", env=env).stdout
    )
    assert step(skipped, "p6.tickets")["state"] == "skipped" and step(skipped, "p6.tickets")["note"] == "no ticket open"


def test_wrong_answers_and_steps_are_one_line_errors(cli, db, fake, tmp_path):
    _, env = world(db, fake, tmp_path)
    clock.set_now(T0)
    service.apply(db, "acme", ANSWERS, options=in_process(fake))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(ANSWERS | {"access": "none"}))
    for args, expected in [
        (("apply", "acme", "--answers", str(other)), "access is 'full' there, 'none' here"),
        (("done", "acme", "p3.approval", "--note", "ok"), "is an approval"),
        (("approve", "p9.nothing"), "no open offboarding run has a step 'p9.nothing'"),
    ]:
        result = cli("offboard", *args, check=False, env=env)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1 and expected in lines[0], (args, result.stderr)


def test_kill_9_mid_run_then_restart_makes_every_destructive_call_once(cli, db, fake, tmp_path):
    _, env = world(db, fake, tmp_path, devices=3)
    clock.set_now(T0)
    options = in_process(fake)
    service.apply(db, "acme", ANSWERS, options=options)
    service.answer(db, "approve", "acme", "p3.approval")
    fake.stall = ("acme-ws01.patching", 20.0)  # the second device's patch policy: applied, never answered

    environment = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    environment |= {"TENURE_HOME": str(tmp_path / "home"), "TENURE_DATABASE_URL": db.url, **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "tenure", "--now", iso(T0), "offboard", "apply", "acme", "--json"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert fake.stalled.wait(30), "the apply never reached the second device"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    writes = 3 * 4  # per device: the patch policy, one task, two checks
    in_flight = "p3.feature-off.acme-ws01.patching"
    run = service.status(db, "acme")
    assert step(run, in_flight)["state"] == "running"
    assert step(run, "p3.check-delete.acme-dc01.cpu")["state"] == "done"
    assert step(run, "p3.check-delete.acme-ws02.cpu")["state"] == "pending"

    restarted = cli("--now", iso(T0 + timedelta(minutes=5)), "offboard", "apply", "acme", "--json", env=env)
    status = json.loads(restarted.stdout)
    done = [s for s in status["steps"] if s["key"].startswith(("p3.feature-off", "p3.check-delete"))]
    assert len(done) == 12 and all(s["state"] == "done" for s in done)
    assert len(fake.applied) == writes and all(n == 1 for n in fake.applied.values())
    with db.reader() as s:
        lost = set(
            s.scalars(
                select(OffboardingStep.key)
                .join(StepAttempt, StepAttempt.step_id == OffboardingStep.id)
                .where(StepAttempt.outcome == "lost")
            )
        )
    assert lost == {in_flight}  # taken over once its lease ended...
    replayed = {key: n for key, n in fake.received.items() if n > 1}
    assert list(replayed.values()) == [2] and in_flight in next(iter(replayed))  # ...its write sent again, applied once
    # a step whose attempt completed was never run again: every other write was received once

    # and the run finishes
    clock.set_now(T0 + timedelta(hours=3))
    status = service.apply(db, "acme", None, options=options)
    for _ in range(5):
        for key in status["waiting_on"]:
            status, _ = service.answer(db, "done", "acme", key, "done")
        papers_out(db)  # the final invoice issued and sent, the reports mailed: the exit check wants them
        status = service.apply(db, "acme", None, options=options)
    assert status["state"] == "done" and fake.live_agents() == [] and fake.clients == {}
    assert all(n == 1 for n in fake.applied.values()) and len(fake.applied) == writes + 3 * 2 + 1

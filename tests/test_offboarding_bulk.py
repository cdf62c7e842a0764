"""Issue 19: an offboarding a person can finish. A ten-device client on an RMM Tenure cannot drive (every
phase 3 step is a person's), approved ten days before its end of service: the steps that end a service it
still pays for are refused until the end date (naming it), then a device's steps and a phase's are ticked at
once from the command line and the API, each recorded with its note and its actor."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tenure import clock
from tenure.accounts import users
from tenure.accounts.users import create_user, create_user_token
from tenure.api.app import create_app
from tenure.book.service import import_book
from tenure.errors import Conflict
from tenure.offboarding import service
from tests.books import small

END = "2026-12-15"
EARLY = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)
AT_END = datetime(2026, 12, 15, 15, 0, tzinfo=UTC)
DEVICES = [f"acme-pc{n:02d}" for n in range(10)]
ANSWERS = {
    "end_of_service": END,
    "reason": "client_cancelled",
    "access": "full",
    "agent_deployment": "manual",
    "moving_to": "own_it",
    "new_contact": {"name": "Jo Smith", "email": "jo@acmedental.example"},
    "security_account": "close",
    "closeout": {"date": "2026-12-01", "attended": ["Jo Smith", "Sam Lee"], "notes": "handover agreed"},
}


def ten_devices() -> dict[str, Any]:
    book = small()
    acme = book["clients"][0]
    acme["devices"] = [
        {"key": key, "hostname": key.upper(), "site": "main", "role": "workstation", "os": "Windows 11",
         "features": ["patching", "antivirus", "remote_control"], "checks": ["disk_space", "cpu"],
         "rmm": {"vendor": "nsight", "id": f"agent-{key}"}}
        for key in DEVICES
    ]  # fmt: skip
    acme["accounts"] = [
        {"key": "acme-rmm", "kind": "rmm", "vendor": "nsight", "external_id": "7"},
        {"key": "acme-siem", "kind": "siem", "vendor": "blumira", "edition": "SIEM Pro", "sensors": 1, "users": 2},
    ]
    acme["backup_jobs"] = []
    return book


def step(status: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in status["steps"] if s["key"] == key)


@pytest.fixture
def approved(db: Any) -> dict[str, Any]:
    import_book(db, ten_devices())
    clock.set_now(EARLY)
    status = service.apply(db, "acme", ANSWERS, owner="Pat Manager")
    service.answer(db, "approve", "acme", "p3.approval", "end of service confirmed")
    service.answer(db, "done", "acme", "p1.licenses", "listed")
    return service.apply(db, "acme", None) | {"started": status}


def test_the_closeout_session_and_the_owner_are_recorded_and_the_approval_waits_for_them(approved):
    started = approved["started"]
    closeout = step(started, "p1.closeout")
    assert closeout["state"] == "done" and "Jo Smith, Sam Lee" in closeout["result"]["detail"]
    assert "p1.closeout" in step(started, "p3.approval")["depends_on"]
    assert started["owner"] == "Pat Manager" and started["closeout"]["date"] == "2026-12-01"


def test_paid_services_are_held_to_the_end_date_and_notices_go_first(db, approved):
    status = approved
    held = step(status, f"p3.feature-off.{DEVICES[0]}.antivirus")
    assert held["state"] == "waiting" and held["waiting_on"] == "clock" and held["not_before"].startswith(END[:8])
    assert held["target"]["not_before"] == END
    # the antivirus notice is not held: it goes ten days before
    assert step(status, "p3.antivirus-notice")["target"].get("not_before") is None
    # seed 002: the client stops using the security vendor: its logs and alerts stop before the end date
    sensors = step(status, "p3.siem-remove.acme-siem.sensors")
    assert sensors["due_before"] == END and "before 2026-12-15" in sensors["title"]
    assert step(status, "p3.siem-confirmed.acme-siem")["kind"] == "manual"
    with pytest.raises(Conflict, match="may not be done before 2026-12-15"):
        service.answer(db, "done", "acme", held["key"], "too early")


def test_the_service_desk_and_maintenance_go_on_until_the_end_date(db, approved):
    # the client pays for its tickets being worked and its maintenance until the end: neither the closing of its
    # tickets nor the stop of its plan runs at approval
    maintenance = step(approved, "p6.maintenance-stop")
    assert maintenance["state"] == "waiting" and maintenance["waiting_on"] == "clock"
    assert maintenance["target"]["not_before"] == END
    tickets = step(approved, "p6.tickets")
    assert tickets["target"]["not_before"] == END
    with pytest.raises(Conflict, match="may not be done before 2026-12-15"):
        service.answer(db, "done", "acme", "p6.tickets", "closed them early")


def test_a_device_then_a_phase_ticked_at_once_from_the_cli_and_the_api(db, cli, approved, monkeypatch):
    run = approved["run"]
    early = cli("--now", EARLY.isoformat(), "offboard", "done", "acme", "--device", DEVICES[1], "--note", "x",
                check=False)  # fmt: skip
    assert early.returncode != 0 and "may not be done before 2026-12-15" in early.stderr
    assert len(early.stderr.strip().splitlines()) == 1

    ticked = json.loads(
        cli("--now", AT_END.isoformat(), "offboard", "done", "acme", "--device", DEVICES[1], "--note",
            "turned off in the N-sight dashboard", "--json").stdout
    )  # fmt: skip
    assert ticked["count"] == 5  # three features and two checks: the uninstall waits for the two hours
    status = service.status(db, "acme")
    for key in ticked["steps"]:
        done = step(status, key)
        assert done["state"] == "done" and done["note"] == "turned off in the N-sight dashboard"
        assert done["done_by"].startswith("cli:") and done["target"]["device"] == DEVICES[1]

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    create_user(db, "tech", "a long enough password", "technician")
    token, _ = create_user_token(db, "tech-token", None, "tech")
    headers = {"Authorization": f"Bearer {token}"}
    clock.set_now(AT_END)
    with TestClient(create_app(db)) as http:
        one = f"/api/v1/offboarding/runs/{run}/steps/p3.check-delete.{DEVICES[2]}.cpu/done"
        single = http.post(one, json={"note": "ticked alone"}, headers=headers)
        assert single.status_code == 200, single.text  # at the end date it may be ticked
        answer = http.post(f"/api/v1/offboarding/runs/{run}/steps/done", json={"phase": 3, "note": "done on site"},
                           headers=headers)  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
    # every device's features and checks (ten devices, five each, less the six ticked already)
    assert body["count"] >= 10 * 5 - 6 and body["state"] == "waiting"
    status = service.status(db, "acme")
    for key in body["steps"]:
        assert step(status, key)["note"] == "done on site" and step(status, key)["done_by"] == "user:tech"


def test_an_early_done_over_the_api_is_a_409_naming_the_date(db, approved, monkeypatch):
    run = approved["run"]
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    create_user(db, "tech", "a long enough password", "technician")
    token, _ = create_user_token(db, "tech-token", None, "tech")
    with TestClient(create_app(db)) as http:
        answer = http.post(
            f"/api/v1/offboarding/runs/{run}/steps/p3.feature-off.{DEVICES[0]}.antivirus/done",
            json={"note": "too early"}, headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
    assert answer.status_code == 409 and "2026-12-15" in answer.json()["detail"]
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_run_is_started_over_the_api_and_bad_answers_name_each_field(db, monkeypatch):
    import_book(db, ten_devices())
    clock.set_now(EARLY)
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    create_user(db, "boss", "a long enough password", "owner")
    token, _ = create_user_token(db, "boss-token", None, "boss")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(db)) as http:
        bad = http.post("/api/v1/offboarding/runs", headers=headers, json={
            "client": "acme", "answers": {"reason": "bored", "stop_services_on": "2027-01-01",
                                          "end_of_service": END, "closeout": {"date": "soon"}}})  # fmt: skip
        assert bad.status_code == 422
        names = {p["name"] for p in bad.json()["invalid-params"]}
        assert {"answers.reason", "answers.access", "answers.stop_services_on", "answers.closeout.date",
                "answers.closeout.attended"} <= names  # fmt: skip
        started = http.post("/api/v1/offboarding/runs", headers=headers,
                            json={"client": "acme", "answers": ANSWERS, "owner": "Pat Manager"})  # fmt: skip
        assert started.status_code == 201, started.text
        assert started.json()["owner"] == "Pat Manager" and started.json()["state"] == "waiting"
        again = http.post("/api/v1/offboarding/runs", headers=headers, json={"client": "acme", "answers": ANSWERS})
        assert again.status_code == 409
        run = started.json()["run"]
        approved = http.post(f"/api/v1/offboarding/runs/{run}/steps/p3.approval/approve", headers=headers,
                             json={"note": "go"})  # fmt: skip
        assert approved.status_code == 200 and approved.json()["step"]["state"] == "done"
        assigned = http.post(f"/api/v1/offboarding/runs/{run}/steps/assign", headers=headers,
                             json={"device": DEVICES[3], "assignee": "Sam"})  # fmt: skip
        assert assigned.status_code == 200 and assigned.json()["count"] >= 5
    assert all(s["assignee"] == "Sam" for s in service.status(db, "acme")["steps"]
               if s["target"].get("device") == DEVICES[3])  # fmt: skip


def test_stop_services_on_brings_the_hold_forward(db):
    import_book(db, ten_devices())
    clock.set_now(EARLY)
    status = service.apply(db, "acme", ANSWERS | {"stop_services_on": "2026-12-05"})
    service.answer(db, "approve", "acme", "p3.approval")
    status = service.apply(db, "acme", None)
    off = step(status, f"p3.feature-off.{DEVICES[0]}.patching")
    assert off["target"]["not_before"] == "2026-12-05" and off["waiting_on"] == "person"
    status, _ = service.answer(db, "done", "acme", off["key"], "off")
    assert step(status, off["key"])["state"] == "done"


def test_the_run_page_ticks_the_checked_steps_and_says_why_an_early_one_is_refused(db, approved, monkeypatch):
    from tenure.accounts.users import log_in
    from tenure.web.routes import SESSION_COOKIE

    run = approved["run"]
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    create_user(db, "tech", "a long enough password", "technician")
    opened = log_in(db, "tech", "a long enough password", "127.0.0.1")
    http = TestClient(create_app(db), base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
    page = http.get(f"/offboarding/{run}")
    assert page.status_code == 200 and 'form="bulk"' in page.text and 'id="bulk-device"' in page.text
    early = [f"p3.check-delete.{DEVICES[4]}.cpu"]
    refused = http.post(f"/offboarding/{run}/many", data={"csrf": opened.csrf, "step": early, "note": "x",
                                                          "action": "done"})  # fmt: skip
    assert "may not be done before 2026-12-15" in refused.text
    clock.set_now(AT_END)  # ten days later: a new session
    opened = log_in(db, "tech", "a long enough password", "127.0.0.1")
    http = TestClient(create_app(db), base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret})
    picked = [f"p3.check-delete.{DEVICES[4]}.cpu", f"p3.check-delete.{DEVICES[4]}.disk_space"]
    ticked = http.post(f"/offboarding/{run}/many", data={"csrf": opened.csrf, "step": picked,
                                                         "note": "deleted in N-sight", "action": "done"})  # fmt: skip
    assert "2 step(s) of 2 step(s) done" in ticked.text
    status = service.status(db, "acme")
    assert all(step(status, k)["note"] == "deleted in N-sight" and step(status, k)["done_by"] == "user:tech"
               for k in picked)  # fmt: skip

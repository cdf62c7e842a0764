"""REST API v1 in process: every route refuses a missing, wrong or revoked token and every role that may not
(the route table comes from /openapi.json), paging and filters, problem details, changes under the caller's
name, /metrics and the JSON request log, and backup / restore from the command line."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenure import clock
from tenure.accounts import users
from tenure.accounts.service import create_token, revoke_token
from tenure.accounts.users import PERMISSIONS, create_user, create_user_token, list_users, set_active
from tenure.api.app import create_app
from tenure.book.demo import load_demo
from tenure.clients.models import Client
from tenure.db.changelog import ObjectChange
from tenure.errors import TenureError
from tenure.offboarding import service as offboarding
from tenure.vocabulary import ACTIVE_TICKET_STATUSES
from tests.support import empty

NOW = "2026-11-24T15:00:00Z"
ROLES = ("owner", "technician", "bookkeeper", "readonly", "intake")
ANSWERS = {
    "end_of_service": "2026-12-15",
    "reason": "client_cancelled",
    "access": "remote",
    "agent_deployment": "manual",
    "moving_to": "other_msp",
    "new_contact": {"name": "Ada Stone", "email": "ada@incoming-msp.example"},
    "closeout": {"date": "2026-12-01", "attended": ["Ada Stone", "Jo Smith"], "notes": "handover agreed"},
    "delete_data": False,
}
SAMPLE = {
    "key": "acme",
    "item": "x",
    "entry": "999999",
    "rule": "999999",
    "name": "nobody",  # a user or a token that is not there
    "notice": "999999",
    "task": "nope",
    "number": "NOPE-1",
    "ticket": "999999",
    "run": "999999",
    "uuid": "0",
    "signal": "start",
}
INTAKE_PATHS = ("/api/v1/intake/",)


@pytest.fixture
def world(db, monkeypatch) -> dict[str, Any]:
    """The demo MSP, a user and a token per role, and an HTTP client."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now(NOW)
    load_demo(db)
    tokens: dict[str, str] = {}
    for role in ("owner", "technician", "bookkeeper", "readonly"):
        create_user(db, f"{role}-user", "a long enough password", role)
        tokens[role], _ = create_user_token(db, f"{role}-token", None, f"{role}-user")
    tokens["intake"], _ = create_token(db, "monitor", "intake")
    old, _ = create_token(db, "old", "owner")
    revoke_token(db, "old")
    with TestClient(create_app(db)) as http:
        yield {"db": db, "http": http, "tokens": tokens, "revoked": old}


@pytest.fixture(scope="class")
def bare(_migrated) -> Any:
    """A token per role, no demo, shared by the route table's tests (one database reset for all of them)."""
    db = _migrated
    empty(db)
    clock.set_now(NOW)
    tokens = {role: create_token(db, f"{role}-token", role)[0] for role in ROLES}
    old, _ = create_token(db, "old", "owner")
    revoke_token(db, "old")
    with TestClient(create_app(db)) as http:
        yield {"db": db, "http": http, "tokens": tokens, "revoked": old}
    clock.set_now(None)
    empty(db)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def operations() -> list[tuple[str, str, str | None]]:
    """(method, path, permission) of every operation under /api/v1 that needs a token."""
    spec = _spec()
    found = []
    for path, methods in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in methods.items():
            permission = operation.get("x-permission")
            if path.startswith(INTAKE_PATHS):
                permission = "intake.post"
            found.append((method.upper(), path, permission))
    return sorted(found)


_SPEC: dict[str, Any] = {}


def _spec() -> dict[str, Any]:
    if not _SPEC:
        from tenure.db.engine import Database

        _SPEC.update(create_app(Database("sqlite://")).openapi())
    return _SPEC


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)


def call(http: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    if method == "GET":
        return http.get(concrete(path), headers=headers)
    if path.startswith(INTAKE_PATHS):
        body = json.dumps({"client": "acme", "title": "probe", "status": "firing"})
        return http.post(concrete(path), content=body, headers=headers | {"Content-Type": "application/json"})
    return http.request(method, concrete(path), json={}, headers=headers)


ROUTES = operations()


def test_the_route_table_covers_every_resource():
    paths = {p for _, p, _ in ROUTES}
    for resource in (
        "/api/v1/clients",
        "/api/v1/clients/{key}",
        "/api/v1/agreements",
        "/api/v1/blocks",
        "/api/v1/time-entries",
        "/api/v1/invoices",
        "/api/v1/invoices/{number}/issue",
        "/api/v1/alerts",
        "/api/v1/tickets",
        "/api/v1/offboarding/runs",
        "/api/v1/offboarding/runs/{run}/steps",
        "/api/v1/reports/unpaid",
    ):
        assert resource in paths
    assert all(permission in PERMISSIONS for _, _, permission in ROUTES), ROUTES


@pytest.mark.db
class TestEveryRoute:
    @pytest.mark.parametrize(("method", "path", "permission"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
    def test_refuses_missing_wrong_revoked_tokens_and_unfit_roles(self, bare, method, path, permission):
        http, tokens = bare["http"], bare["tokens"]
        basic = {"Authorization": "Basic YWxpY2U6c2VjcmV0"}
        for headers in ({}, bearer("tnr_nope_nope"), basic, bearer(bare["revoked"])):
            answer = call(http, method, path, headers)
            assert answer.status_code == 401, (headers, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["status"] == 401 and answer.json()["detail"]
        for role in ROLES:
            answer = call(http, method, path, bearer(tokens[role]))
            if role in PERMISSIONS[permission]:
                assert answer.status_code not in (401, 403), (role, answer.text)
                assert answer.status_code < 500, (role, answer.text)
            else:
                assert answer.status_code == 403, (role, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"


def test_a_deactivated_users_tokens_are_refused_and_no_token_outranks_its_user(world):
    db, http, tokens = world["db"], world["http"], world["tokens"]
    assert http.get("/api/v1/me", headers=bearer(tokens["technician"])).json()["user"] == "technician-user"
    set_active(db, "technician-user", False)
    assert http.get("/api/v1/me", headers=bearer(tokens["technician"])).status_code == 401
    with pytest.raises(TenureError, match="may not hold a owner token"):
        create_user_token(db, "escalate", "owner", "readonly-user")
    lesser, _ = create_user_token(db, "lesser", "readonly", "bookkeeper-user")
    assert http.get("/api/v1/me", headers=bearer(lesser)).json()["role"] == "readonly"


def test_lists_are_pages_with_totals_and_filters(world):
    http, token = world["http"], bearer(world["tokens"]["readonly"])
    first = http.get("/api/v1/clients", params={"limit": 3}, headers=token).json()
    assert first["total"] == 10 and first["total_exact"] and len(first["clients"]) == 3 and first["next_offset"] == 3
    second = http.get("/api/v1/clients", params={"limit": 3, "offset": 3}, headers=token).json()
    assert {c["key"] for c in first["clients"]}.isdisjoint(c["key"] for c in second["clients"])
    former = http.get("/api/v1/clients", params={"class": "former"}, headers=token).json()
    assert [c["key"] for c in former["clients"]] == ["spruce"] and former["clients"][0]["class"] == "former"
    acme = http.get("/api/v1/clients/acme", headers=token).json()
    assert acme["class"] == "agreement" and acme["agreements"][0]["key"] == "acme-managed" and acme["devices"]
    assert set(acme) >= {"key", "name", "class", "agreements", "devices", "block_balance_minutes", "retainer_balance"}
    willow = http.get("/api/v1/clients/willow/ledger", params={"limit": 2}, headers=token).json()
    assert willow["total"] >= 2 and "balance_minutes" in willow["entries"][0]
    blocks = http.get("/api/v1/blocks", params={"client": "willow"}, headers=token).json()["blocks"]
    assert blocks and blocks[0]["balance_minutes"] == willow["entries"][0]["balance_minutes"]
    alerts = http.get("/api/v1/alerts", params={"client": "acme", "limit": 1}, headers=token).json()
    assert alerts["total"] == 2 and len(alerts["alerts"]) == 1 and alerts["next_offset"] == 1
    tickets = http.get("/api/v1/tickets", params={"queue": "true"}, headers=token).json()
    assert tickets["total"] >= 1 and all(t["status"] in ACTIVE_TICKET_STATUSES for t in tickets["tickets"])
    time = http.get("/api/v1/time-entries", params={"client": "acme", "limit": 5}, headers=token).json()
    dates = [t["date"] for t in time["time_entries"]]
    assert dates == sorted(dates, reverse=True) and time["total"] > 5
    agreements = http.get("/api/v1/agreements", params={"kind": "retainer"}, headers=token).json()["agreements"]
    assert [a["client"] for a in agreements] == ["cedar"]
    unpaid = http.get("/api/v1/reports/unpaid", params={"period": "2026-11"}, headers=token).json()
    assert unpaid["period"] == "2026-11" and any(c["client"] == "birch" for c in unpaid["clients"])


def test_validation_errors_name_the_field_at_fault(world):
    http = world["http"]
    answer = http.get("/api/v1/clients", params={"limit": 0}, headers=bearer(world["tokens"]["owner"]))
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["invalid-params"][0]["name"] == "limit"
    answer = http.post(
        "/api/v1/time-entries",
        json={"client": "acme", "minutes": 2000, "work_type": "gardening"},
        headers=bearer(world["tokens"]["technician"]),
    )
    names = {p["name"] for p in answer.json()["invalid-params"]}
    assert answer.status_code == 422 and names == {"minutes", "work_type"}
    answer = http.post(
        "/api/v1/time-entries",
        json={"client": "acme", "minutes": 30, "work_type": "onsite", "date": "9999-12-31"},
        headers=bearer(world["tokens"]["technician"]),
    )
    assert answer.status_code == 422 and answer.json()["invalid-params"][0]["name"] == "date"
    missing = http.get("/api/v1/clients/nobody", headers=bearer(world["tokens"]["owner"]))
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert http.get("/api/v1/nowhere").headers["content-type"] == "application/problem+json"


def test_changes_carry_the_callers_name_in_the_change_log(world):
    db, http, tokens = world["db"], world["http"], world["tokens"]
    logged = http.post(
        "/api/v1/time-entries",
        json={"client": "acme", "minutes": 50, "work_type": "remote_support", "note": "printer"},
        headers=bearer(tokens["technician"]),
    )
    assert logged.status_code == 201, logged.text
    assert logged.json()["rounded_minutes"] == 60 and logged.json()["paid_by"][0]["layer"] == "included"
    run = http.post("/api/v1/billing/runs", json={"period": "2026-11"}, headers=bearer(tokens["bookkeeper"]))
    assert run.status_code == 200 and run.json()["created"] >= 1
    number = run.json()["invoices"][0]
    again = http.post("/api/v1/billing/runs", json={"period": "2026-11"}, headers=bearer(tokens["bookkeeper"]))
    assert again.json()["created"] == 0  # a rerun changes nothing
    issued = http.post(f"/api/v1/invoices/{number}/issue", headers=bearer(tokens["bookkeeper"]))
    assert issued.json()["status"] == "issued"
    twice = http.post(f"/api/v1/invoices/{number}/issue", headers=bearer(tokens["owner"]))
    assert twice.status_code == 422 and "issued" in twice.json()["detail"]
    paid = http.post(f"/api/v1/invoices/{number}/pay", headers=bearer(tokens["owner"]))
    assert paid.json()["status"] == "paid"
    ticket = http.get("/api/v1/tickets", params={"queue": "true"}, headers=bearer(tokens["readonly"])).json()
    closed = http.post(f"/api/v1/tickets/{ticket['tickets'][0]['ticket']}/close", headers=bearer(tokens["technician"]))
    assert closed.json()["status"] == "closed"
    with db.reader() as s:
        actors = {
            (row.object_type, row.actor)
            for row in s.scalars(select(ObjectChange).where(ObjectChange.action.in_(("create", "update"))))
        }
    assert ("time_entry", "user:technician-user") in actors
    assert ("invoice", "user:bookkeeper-user") in actors and ("invoice", "user:owner-user") in actors
    assert ("ticket", "user:technician-user") in actors


def test_offboarding_runs_and_steps_are_read_with_their_attempts(world):
    db, http = world["db"], world["http"]
    offboarding.apply(db, "maple", ANSWERS)
    token = bearer(world["tokens"]["readonly"])
    runs = http.get("/api/v1/offboarding/runs", params={"client": "maple"}, headers=token).json()
    (run,) = runs["runs"]
    assert run["client"] == "maple" and run["steps"] == sum(run["counts"].values())
    detail = http.get(f"/api/v1/offboarding/runs/{run['run']}", headers=token).json()
    assert "p1.licenses" in detail["waiting_on"]
    snapshot = next(s for s in detail["step_list"] if s["key"] == "p1.snapshot")
    assert snapshot["state"] == "done" and snapshot["attempt_log"][0]["outcome"] == "done"
    phase3 = http.get(f"/api/v1/offboarding/runs/{run['run']}/steps", params={"phase": 3}, headers=token).json()
    assert phase3["steps"] and {s["phase"] for s in phase3["steps"]} == {3}


def test_metrics_count_requests_and_intake_and_each_request_logs_one_json_line(world, capsys):
    http, tokens = world["http"], world["tokens"]
    capsys.readouterr()
    http.get("/api/v1/clients/acme", headers=bearer(tokens["readonly"]))
    http.post(
        "/api/v1/intake/events",
        content=json.dumps({"client": "acme", "title": "probe", "status": "firing"}),
        headers=bearer(tokens["intake"]),
    )
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "tenure.http"]
    assert [r["route"] for r in requests] == ["/api/v1/clients/{key}", "/api/v1/intake/events"]
    assert requests[0]["actor"] == "user:readonly-user" and requests[0]["status"] == 200
    took = requests[0]["duration_ms"]  # logged with every request (its value is the bench's business)
    assert isinstance(took, float)
    metrics = http.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'tenure_http_requests_total{method="GET",route="/api/v1/clients/{key}",status="200"} 1.0' in text
    histogram = 'tenure_http_request_duration_seconds_bucket{le="0.2",method="GET",route="/api/v1/clients/{key}"}'
    assert histogram in text
    assert 'tenure_intake_payloads_stored_total{source="events"} 1.0' in text
    assert 'tenure_intake_payloads{state="stored"} 1.0' in text
    assert 'tenure_intake_payloads{state="quarantined"} 0.0' in text


def test_users_tokens_backup_and_restore_on_the_command_line(cli, db, tmp_path):
    clock.set_now(NOW)
    load_demo(db)
    made = cli("user", "create", "ann", "--role", "bookkeeper", "--json", input="correct horse battery\n")
    assert json.loads(made.stdout) == {"username": "ann", "role": "bookkeeper", "active": True, "password": True}
    with pytest.raises(TenureError, match="at least"):
        create_user(db, "bob", "short", "owner")
    token = json.loads(cli("token", "create", "ann-script", "--user", "ann", "--json").stdout)
    assert token["role"] == "bookkeeper" and token["user"] == "ann" and token["token"].startswith("tnr_")
    refused = cli("token", "create", "ann-owner", "--user", "ann", "--role", "owner", check=False)
    assert refused.returncode == 1 and "may not hold" in refused.stderr

    backup = tmp_path / "tenure.backup"
    done = json.loads(cli("backup", str(backup), "--json").stdout)
    assert done["bytes"] > 0 and backup.exists()
    set_active(db, "ann", False)
    assert [u.active for u in list_users(db)] == [False]
    refused = cli("restore", str(backup), check=False)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    cli("restore", str(backup), "--yes")
    assert [(u.username, u.active) for u in list_users(db)] == [("ann", True)]
    with db.reader() as s:
        assert s.scalar(select(Client.key).where(Client.key == "acme")) == "acme"


def test_a_fault_of_ours_is_still_a_problem_document(world, monkeypatch):
    # a script reading the API must be able to read every answer: an error Tenure did not foresee is a 500
    # problem document, not a bare text body
    from tenure.clients import service as client_service

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(client_service, "list_clients", broken)
    monkeypatch.setattr("tenure.web.queries.clients_page", broken, raising=False)
    with TestClient(create_app(world["db"]), raise_server_exceptions=False) as http:
        answer = http.get("/api/v1/clients", headers=bearer(world["tokens"]["owner"]))
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 500 and "server's log" in answer.json()["detail"]

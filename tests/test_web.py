"""The web app in process: log-in, sessions, CSRF, the log-in rate limit, every page and form against every
role (the route table of web/routes.py), and changes made under the user's name."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenure import clock
from tenure.accounts import users
from tenure.accounts.users import IDLE, MAX_FAILURES, PERMISSIONS, create_user, log_in, set_active, set_password
from tenure.api.app import create_app
from tenure.book.demo import load_demo
from tenure.db.changelog import ObjectChange
from tenure.offboarding import service as offboarding
from tenure.web.routes import ROUTES, SESSION_COOKIE
from tests.support import empty

NOW = "2026-11-24T15:00:00Z"
PASSWORD = "a long enough password"
STAFF = ("owner", "technician", "bookkeeper", "readonly")
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
    "key": "acme", "number": "NOPE-1", "ticket": "999999", "run": "999999", "action": "close", "name": "app.css",
    "item": "nope", "entry": "999999", "notice": "999999", "task": "nope", "rule": "999999",
}  # fmt: skip


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    # the production parameters cost ~50 ms a hash; the tests hash and verify a few hundred times
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def browser(db) -> TestClient:
    return TestClient(create_app(db), base_url="http://testserver")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(http: TestClient, username: str, password: str = PASSWORD) -> Any:
    form = http.get("/login")
    return http.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_of(form.text), "next": "/"},
        follow_redirects=False,
    )


def flash(response: Any) -> list[str]:
    return re.findall(r'class="flash (?:ok|error)"[^>]*>(.*?)</p>', response.text)


def signed_in(db: Any, app: Any) -> dict[str, Any]:
    """A browser per role, each with a session opened in process (as the log-in form opens one)."""
    signed = {}
    for role in STAFF:
        opened = log_in(db, role, PASSWORD, "127.0.0.1")
        signed[role] = (
            TestClient(app, base_url="http://testserver", cookies={SESSION_COOKIE: opened.secret}),
            opened.csrf,
        )
    return signed


@pytest.fixture
def people(db) -> dict[str, Any]:
    """A user per role, signed in, and a browser signed out."""
    clock.set_now(NOW)
    app = create_app(db)
    for role in STAFF:
        create_user(db, role, PASSWORD, role)
    yield {
        "db": db,
        "app": app,
        "signed": signed_in(db, app),
        "anonymous": TestClient(app, base_url="http://testserver"),
    }


@pytest.fixture(scope="class")
def shared_people(_migrated) -> Any:
    """The same, shared by the route table's tests (one database reset for all of them)."""
    db = _migrated
    empty(db)
    clock.set_now(NOW)
    hasher = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    app = create_app(db)
    for role in STAFF:
        create_user(db, role, PASSWORD, role)
    yield {
        "db": db,
        "app": app,
        "signed": signed_in(db, app),
        "anonymous": TestClient(app, base_url="http://testserver"),
    }
    users._hasher = hasher
    clock.set_now(None)
    empty(db)


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)


GUARDED = [(m, p, perm) for m, p, perm in ROUTES if perm is not None]


def test_the_route_table_is_every_route_of_the_web_app(db):
    from fastapi.routing import APIRoute

    from tenure.web.routes import make_router

    pages = {
        (method, route.path)
        for route in make_router(lambda: db).routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert pages == {(m, p) for m, p, _ in ROUTES}
    assert all(perm in PERMISSIONS for _, _, perm in GUARDED)


@pytest.mark.db
class TestEveryPage:
    @pytest.mark.parametrize(("method", "path", "permission"), GUARDED, ids=[f"{m} {p}" for m, p, _ in GUARDED])
    def test_needs_a_session_and_the_right_role(self, shared_people, method, path, permission):
        people = shared_people
        if path == "/logout":  # signing out ends the session: these browsers are used once
            people = people | {"signed": signed_in(people["db"], people["app"])}
        url = concrete(path)
        anonymous = people["anonymous"]
        answer = anonymous.request(method, url, data={} if method == "POST" else None, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), answer.text
        for role, (http, csrf) in people["signed"].items():
            data = {"csrf": csrf, "period": "2026-11", "step": "p1.licenses", "note": "n", "minutes": "30"}
            if method == "POST":
                data |= {"work_type": "onsite"}
            answer = http.request(method, url, data=data if method == "POST" else None, follow_redirects=False)
            if role in PERMISSIONS[permission]:
                assert answer.status_code not in (401, 403), (role, answer.text[:500])
                assert answer.status_code < 500, (role, answer.text[:500])
            else:
                assert answer.status_code == 403, (role, answer.text[:500])
                assert "may not" in answer.text


def test_every_form_refuses_a_missing_or_stale_csrf_token(people):
    http, csrf = people["signed"]["owner"]
    for data in ({}, {"csrf": ""}, {"csrf": csrf[:-2] + "xx"}):
        answer = http.post("/billing/run", data=data | {"period": "2026-11"}, follow_redirects=False)
        assert answer.status_code == 403 and "security token" in answer.text
    # a token of another session is stale here
    other = people["signed"]["bookkeeper"][1]
    assert http.post("/billing/run", data={"csrf": other, "period": "2026-11"}).status_code == 403
    assert http.post("/logout", data={}, follow_redirects=False).status_code == 403
    # the log-in form checks its double-submit cookie
    fresh = browser(people["db"])
    answer = fresh.post("/login", data={"username": "owner", "password": PASSWORD, "csrf": "forged"})
    assert answer.status_code == 403 and "expired" in answer.text


def test_log_in_and_out_and_what_ends_a_session(db):
    clock.set_now(NOW)
    create_user(db, "ann", PASSWORD, "owner")
    create_user(db, "otto", PASSWORD, "owner")  # the last active owner could not be deactivated below
    http = browser(db)
    assert http.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
    wrong = sign_in(http, "ann", "not the password")
    assert wrong.status_code == 401 and "wrong" in wrong.text
    assert sign_in(http, "nobody").status_code == 401
    good = sign_in(http, "ann")
    assert good.status_code == 303
    cookie = good.headers["set-cookie"]
    assert "tenure_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    home = http.get("/")
    assert home.status_code == 200 and "ann" in home.text
    assert home.headers["content-security-policy"].startswith("default-src 'self'")
    assert home.headers["x-frame-options"] == "DENY"
    out = http.post("/logout", data={"csrf": csrf_of(home.text)}, follow_redirects=False)
    assert out.status_code == 303 and http.get("/", follow_redirects=False).status_code == 303

    sign_in(http, "ann")
    clock.set_now(clock.now() + IDLE + timedelta(minutes=1))  # idle too long
    assert http.get("/", follow_redirects=False).status_code == 303
    sign_in(http, "ann")
    set_password(db, "ann", "another long password")  # a new password ends every session
    assert http.get("/", follow_redirects=False).status_code == 303
    assert sign_in(http, "ann", "another long password").status_code == 303
    set_active(db, "ann", False)
    assert http.get("/", follow_redirects=False).status_code == 303
    assert sign_in(http, "ann", "another long password").status_code == 401


def test_log_in_is_rate_limited_per_user_and_address(db):
    clock.set_now(NOW)
    create_user(db, "ann", PASSWORD, "owner")
    create_user(db, "bob", PASSWORD, "readonly")
    http = browser(db)
    for _ in range(MAX_FAILURES):
        assert sign_in(http, "ann", "guess guess guess").status_code == 401
    limited = sign_in(http, "ann")  # even the right password waits now
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert "too many" in limited.text
    assert sign_in(browser(db), "bob").status_code == 303  # another user from the same address is not held
    clock.set_now(clock.now() + timedelta(minutes=16))
    assert sign_in(http, "ann").status_code == 303


def test_pages_show_the_msp_and_work_offline(people):
    db = people["db"]
    load_demo(db)
    offboarding.apply(db, "maple", ANSWERS)
    http, _ = people["signed"]["readonly"]
    with db.reader() as s:
        from tenure.offboarding.models import OffboardingRun

        run = s.scalar(select(OffboardingRun.id).where(OffboardingRun.state != "done"))
    pages = {
        "/": ["<svg", "Clients by class", "Triage queue", "Low balances", "Unpaid work"],
        "/clients": ["acme", "agreement"],
        "/clients?class=former": ["spruce"],
        "/clients/willow": ["Prepaid ledger", "willow-b1"],
        "/clients/acme": ["acme-managed", "Devices", "Alerts"],
        "/triage": ["Triage queue"],
        "/alerts?decision=ticket": ["ticket"],
        "/time?client=acme": ["acme"],
        "/billing": ["Invoices"],
        "/offboarding": ["maple"],
        f"/offboarding/{run}": ["Phase 1: Inventory", "p1.licenses", "attempt(s)"],
        "/reports/unpaid?period=2026-11": ["birch"],
    }
    for url, expected in pages.items():
        answer = http.get(url)
        assert answer.status_code == 200, (url, answer.text[:300])
        for text in expected:
            assert text in answer.text, (url, text)
        # every asset comes from the package: no CDN, no external URL in src or href
        assert not re.search(r'(?:src|href)="(?:https?:)?//', answer.text), url
    # a readonly user sees no form that changes anything
    assert 'action="/billing/run"' not in http.get("/billing").text
    assert "data-step-done" not in http.get(f"/offboarding/{run}").text
    css = http.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert http.get("/static/app.js", headers={"If-None-Match": css.headers["etag"]}).status_code == 304
    assert http.get("/static/../routes.py").status_code == 404
    assert http.get("/clients/nobody").status_code == 404


def test_changes_through_the_pages_carry_the_users_name(people):
    db = people["db"]
    load_demo(db)
    offboarding.apply(db, "maple", ANSWERS)
    owner, csrf = people["signed"]["owner"]
    tech, tech_csrf = people["signed"]["technician"]
    logged = tech.post(
        "/clients/acme/time", data={"csrf": tech_csrf, "minutes": "20", "work_type": "onsite", "note": "visit"}
    )
    assert "logged 20 min of onsite" in flash(logged)[0]
    ran = people["signed"]["bookkeeper"][0].post(
        "/billing/run", data={"csrf": people["signed"]["bookkeeper"][1], "period": "2026-11"}
    )
    assert "billing run 2026-11" in flash(ran)[0]
    with db.reader() as s:
        from tenure.offboarding.models import OffboardingRun

        run = s.scalar(select(OffboardingRun.id).where(OffboardingRun.state != "done"))
    done = tech.post(f"/offboarding/{run}/done", data={"csrf": tech_csrf, "step": "p1.licenses", "note": "reused 3"})
    assert "p1.licenses done" in flash(done)[0]
    refused = tech.post(f"/offboarding/{run}/done", data={"csrf": tech_csrf, "step": "p3.approval", "note": "x"})
    assert "approval" in flash(refused)[0]
    approved = owner.post(f"/offboarding/{run}/approve", data={"csrf": csrf, "step": "p3.approval"})
    assert "approved p3.approval" in flash(approved)[0]
    status = offboarding.status(db, "maple")
    step = next(s for s in status["steps"] if s["key"] == "p1.licenses")
    assert (step["state"], step["note"], step["done_by"]) == ("done", "reused 3", "user:technician")
    with db.reader() as s:
        actors = {(c.object_type, c.actor) for c in s.scalars(select(ObjectChange))}
    assert ("time_entry", "user:technician") in actors and ("invoice", "user:bookkeeper") in actors

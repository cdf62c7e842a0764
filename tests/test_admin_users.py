"""The owner manages users and API tokens over the API and on the settings pages, end to end: a user the
owner adds signs in with that role, a token made on the page works as a Bearer until it is revoked and its
secret is shown once, the last active owner cannot be locked out, and nobody but an owner gets in."""

from __future__ import annotations

import re
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tenure import clock
from tenure.accounts import users
from tenure.accounts.users import create_user, create_user_token
from tenure.api.app import create_app

NOW = "2026-11-24T15:00:00Z"
PASSWORD = "a long enough password"


@pytest.fixture
def office(db, monkeypatch) -> dict[str, Any]:
    """An owner (boss) and a technician (tim), each with a token of their own, and the app."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now(NOW)
    create_user(db, "boss", PASSWORD, "owner")
    create_user(db, "tim", PASSWORD, "technician")
    owner, _ = create_user_token(db, "boss-script", None, "boss")
    technician, _ = create_user_token(db, "tim-script", None, "tim")
    app = create_app(db)
    with TestClient(app, base_url="http://testserver") as http:
        yield {"db": db, "app": app, "http": http, "owner": bearer(owner), "technician": bearer(technician)}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def browser(office: dict[str, Any], username: str, password: str = PASSWORD) -> tuple[TestClient, Any]:
    """A browser that has just been through the log-in form as `username` (the answer to the form too)."""
    http = TestClient(office["app"], base_url="http://testserver")
    form = http.get("/login")
    answer = http.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_of(form.text), "next": "/"},
        follow_redirects=False,
    )
    return http, answer


def invalid(answer: Any) -> set[str]:
    return {p["name"] for p in answer.json().get("invalid-params", [])}


def flash(response: Any) -> list[str]:
    return re.findall(r'class="flash (?:ok|error)"[^>]*>(.*?)</p>', response.text)


# ------------------------------------------------------------------------------------------------ the API


def test_the_owner_adds_a_user_over_the_api_who_then_signs_in_with_that_role(office):
    http, owner = office["http"], office["owner"]
    made = http.post("/api/v1/users", json={"name": "ann", "role": "bookkeeper", "password": PASSWORD}, headers=owner)
    assert made.status_code == 201, made.text
    assert made.json() == {
        "name": "ann", "role": "bookkeeper", "active": True, "created_at": "2026-11-24T15:00:00+00:00",
        "last_sign_in_at": None,
    }  # fmt: skip
    listed = http.get("/api/v1/users", headers=owner).json()
    assert [u["name"] for u in listed["users"]] == ["ann", "boss", "tim"] and listed["total"] == 3
    assert "argon2" not in http.get("/api/v1/users", headers=owner).text  # never a password hash

    ann, signed = browser(office, "ann")
    assert signed.status_code == 303
    assert ann.get("/billing").status_code == 200  # a bookkeeper's page
    assert ann.get("/settings/users").status_code == 403  # not an owner's
    seen = next(u for u in http.get("/api/v1/users", headers=owner).json()["users"] if u["name"] == "ann")
    assert seen["last_sign_in_at"] == "2026-11-24T15:00:00+00:00"

    # a new role takes effect on her session at once; deactivated, she is out; a new password ends sessions
    csrf = csrf_of(ann.get("/billing").text)
    assert ann.post("/billing/run", data={"csrf": csrf, "period": "2026-10"}, follow_redirects=False).status_code == 303
    assert http.patch("/api/v1/users/ann", json={"role": "readonly"}, headers=owner).json()["role"] == "readonly"
    assert ann.post("/billing/run", data={"csrf": csrf, "period": "2026-10"}).status_code == 403
    off = http.patch("/api/v1/users/ann", json={"active": False}, headers=owner)
    assert off.status_code == 200 and off.json()["active"] is False
    assert ann.get("/", follow_redirects=False).status_code == 303
    assert browser(office, "ann")[1].status_code == 401
    back = http.patch("/api/v1/users/ann", json={"active": True, "password": "another long password"}, headers=owner)
    assert back.status_code == 200 and back.json()["active"] is True
    assert browser(office, "ann")[1].status_code == 401  # the old password no longer works
    assert browser(office, "ann", "another long password")[1].status_code == 303


def test_the_api_refuses_what_the_command_line_refuses_naming_the_field(office):
    http, owner = office["http"], office["owner"]

    def add(**body: Any) -> Any:
        return http.post("/api/v1/users", json={"name": "bob", "role": "technician", "password": PASSWORD} | body,
                         headers=owner)  # fmt: skip

    short = add(password="short")
    assert short.status_code == 422 and invalid(short) == {"password"} and "at least 10" in short.json()["detail"]
    assert add(role="god").status_code == 422 and invalid(add(role="god")) == {"role"}
    assert invalid(add(role="intake")) == {"role"}  # intake is for machines: a token, never a person
    spaced = add(name="bob smith")
    assert spaced.status_code == 422 and invalid(spaced) == {"name"}
    taken = add(name="tim")
    assert taken.status_code == 409 and invalid(taken) == {"name"} and "tim" in taken.json()["detail"]
    assert http.patch("/api/v1/users/nobody", json={"role": "owner"}, headers=owner).status_code == 404
    short = http.patch("/api/v1/users/tim", json={"role": "owner", "password": "short"}, headers=owner)
    assert short.status_code == 422 and invalid(short) == {"password"}
    # refused as a whole: the valid part of the change was not made either
    assert next(u for u in http.get("/api/v1/users", headers=owner).json()["users"] if u["name"] == "tim")["role"] == (
        "technician"
    )
    assert [u["name"] for u in http.get("/api/v1/users", headers=owner).json()["users"]] == ["boss", "tim"]


def test_the_last_active_owner_can_be_neither_demoted_nor_deactivated(office, cli):
    http, owner = office["http"], office["owner"]
    demoted = http.patch("/api/v1/users/boss", json={"role": "technician"}, headers=owner)
    assert demoted.status_code == 409 and invalid(demoted) == {"role"}
    assert "last active owner" in demoted.json()["detail"]
    off = http.patch("/api/v1/users/boss", json={"active": False}, headers=owner)
    assert off.status_code == 409 and invalid(off) == {"active"}
    refused = cli("user", "deactivate", "boss", check=False)  # the command line refuses it too
    assert refused.returncode == 1 and "last active owner" in refused.stderr
    refused = cli("user", "role", "boss", "readonly", check=False)
    assert refused.returncode == 1 and "last active owner" in refused.stderr

    # the page says so beside the user's form, and nothing changed
    page, _ = browser(office, "boss")
    csrf = csrf_of(page.get("/settings/users").text)
    answer = page.post("/settings/users/boss/deactivate", data={"csrf": csrf})
    assert answer.status_code == 409 and "last active owner" in answer.text
    answer = page.post("/settings/users/boss/role", data={"csrf": csrf, "role": "bookkeeper"})
    assert answer.status_code == 409 and re.search(r'<option value="bookkeeper" selected>', answer.text)
    assert http.get("/api/v1/me", headers=owner).json()["role"] == "owner"

    # with another owner, either may step down
    assert http.patch("/api/v1/users/tim", json={"role": "owner"}, headers=owner).status_code == 200
    assert http.patch("/api/v1/users/boss", json={"role": "technician"}, headers=owner).status_code == 200
    assert http.get("/api/v1/users", headers=owner).status_code == 403  # boss's token follows boss's role
    tim = bearer(create_user_token(office["db"], "tim-owner", None, "tim")[0])
    assert http.patch("/api/v1/users/tim", json={"active": False}, headers=tim).status_code == 409


def test_tokens_over_the_api_show_the_secret_once_and_stop_working_once_revoked(office):
    http, owner = office["http"], office["owner"]
    made = http.post("/api/v1/tokens", json={"name": "grafana", "role": "readonly"}, headers=owner)
    assert made.status_code == 201, made.text
    secret = made.json()["token"]
    assert secret.startswith("tnr_") and made.json()["user"] is None and made.json()["revoked_at"] is None
    assert http.get("/api/v1/me", headers=bearer(secret)).json()["token"] == "grafana"

    listed = http.get("/api/v1/tokens", headers=owner)
    assert secret not in listed.text and secret[len("tnr_") + 9 :] not in listed.text
    assert all("token" not in t and "token_hash" not in t for t in listed.json()["tokens"])
    grafana = next(t for t in listed.json()["tokens"] if t["name"] == "grafana")
    assert grafana["prefix"] in secret and grafana["last_used_at"] is not None and grafana["role"] == "readonly"
    assert next(t for t in listed.json()["tokens"] if t["name"] == "tim-script")["user"] == "tim"

    taken = http.post("/api/v1/tokens", json={"name": "grafana", "role": "readonly"}, headers=owner)
    assert taken.status_code == 409 and invalid(taken) == {"name"}
    mine = http.post("/api/v1/tokens", json={"name": "tim-cron", "user": "tim"}, headers=owner)
    assert mine.status_code == 201 and mine.json()["role"] == "technician" and mine.json()["user"] == "tim"
    above = http.post("/api/v1/tokens", json={"name": "tim-root", "role": "owner", "user": "tim"}, headers=owner)
    assert above.status_code == 422 and invalid(above) == {"role"}
    nobody = http.post("/api/v1/tokens", json={"name": "x", "user": "nobody"}, headers=owner)
    assert nobody.status_code == 422 and invalid(nobody) == {"user"}

    revoked = http.delete("/api/v1/tokens/grafana", headers=owner)
    assert revoked.status_code == 200 and revoked.json()["name"] == "grafana" and revoked.json()["revoked_at"]
    assert "token" not in revoked.json()
    assert http.get("/api/v1/me", headers=bearer(secret)).status_code == 401
    assert http.delete("/api/v1/tokens/grafana", headers=owner).status_code == 404
    assert http.delete("/api/v1/tokens/never-made", headers=owner).status_code == 404


ROUTES = [
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/boss"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/boss-script"),
]
PAGES = [
    ("GET", "/settings/users"),
    ("POST", "/settings/users"),
    ("POST", "/settings/users/boss/role"),
    ("POST", "/settings/users/boss/password"),
    ("POST", "/settings/users/tim/deactivate"),
    ("POST", "/settings/users/tim/activate"),
    ("GET", "/settings/tokens"),
    ("POST", "/settings/tokens"),
    ("POST", "/settings/tokens/boss-script/revoke"),
]


def test_a_technician_is_refused_every_user_and_token_route(office):
    http = office["http"]
    bodies = {"name": "sneaky", "role": "owner", "password": PASSWORD, "active": False}
    for method, path in ROUTES:
        body = {k: v for k, v in bodies.items() if method != "PATCH" or k != "name"} if method != "GET" else None
        answer = http.request(method, path, json=body, headers=office["technician"])
        assert answer.status_code == 403, (method, path, answer.text)
    tim, _ = browser(office, "tim")
    csrf = csrf_of(tim.get("/").text)
    for method, path in PAGES:
        data = {"csrf": csrf, "name": "sneaky", "role": "owner", "password": PASSWORD} if method == "POST" else None
        answer = tim.request(method, path, data=data, follow_redirects=False)
        assert answer.status_code == 403, (method, path, answer.text[:300])
    # nothing happened: no user, no token, boss still the owner, tim still a technician with a live token
    owner = office["owner"]
    assert [(u["name"], u["role"]) for u in http.get("/api/v1/users", headers=owner).json()["users"]] == [
        ("boss", "owner"), ("tim", "technician")
    ]  # fmt: skip
    assert all(t["revoked_at"] is None for t in http.get("/api/v1/tokens", headers=owner).json()["tokens"])
    assert "Users and roles" not in tim.get("/settings").text  # the settings tabs hide what they may not open


# ------------------------------------------------------------------------------------------------ the pages


def test_the_owner_adds_and_changes_users_on_the_page(office):
    page, _ = browser(office, "boss")
    listed = page.get("/settings/users")
    assert listed.status_code == 200 and 'aria-current="page"' in listed.text and "Users and roles" in listed.text
    assert "Read-only" in listed.text and "argon2" not in listed.text  # roles in words; never a hash
    csrf = csrf_of(listed.text)

    short = page.post("/settings/users", data={"csrf": csrf, "name": "cleo", "role": "bookkeeper", "password": "short"})
    assert short.status_code == 422
    assert 'value="cleo"' in short.text and re.search(r'<option value="bookkeeper" selected>', short.text)
    assert re.search(r'class="field invalid" data-field="password"', short.text)
    assert 'value="short"' not in short.text  # a password is never shown again
    taken = page.post("/settings/users", data={"csrf": csrf, "name": "tim", "role": "owner", "password": PASSWORD})
    assert taken.status_code == 409 and re.search(r'class="field invalid" data-field="name"', taken.text)

    made = page.post("/settings/users", data={"csrf": csrf, "name": "cleo", "role": "bookkeeper", "password": PASSWORD})
    assert made.status_code == 200 and "cleo added as Bookkeeper" in " ".join(flash(made))
    cleo, signed = browser(office, "cleo")
    assert signed.status_code == 303 and cleo.get("/billing").status_code == 200

    changed = page.post("/settings/users/cleo/role", data={"csrf": csrf, "role": "technician"})
    assert "cleo is now Technician" in " ".join(flash(changed))
    cleo_csrf = csrf_of(cleo.get("/").text)
    assert cleo.post("/billing/run", data={"csrf": cleo_csrf, "period": "2026-10"}).status_code == 403
    weak = page.post("/settings/users/cleo/password", data={"csrf": csrf, "password": "tiny"})
    assert weak.status_code == 422 and "at least 10" in weak.text and 'id="change-cleo" open' in weak.text
    page.post("/settings/users/cleo/password", data={"csrf": csrf, "password": "brand new password"})
    assert cleo.get("/", follow_redirects=False).status_code == 303  # her session ended with the old password
    off = page.post("/settings/users/cleo/deactivate", data={"csrf": csrf})
    assert "cleo deactivated" in " ".join(flash(off)) and "deactivated</span>" in off.text
    assert browser(office, "cleo", "brand new password")[1].status_code == 401
    page.post("/settings/users/cleo/activate", data={"csrf": csrf})
    assert browser(office, "cleo", "brand new password")[1].status_code == 303
    assert page.post("/settings/users/nobody/role", data={"csrf": csrf, "role": "owner"}).status_code == 404


def test_a_token_made_on_the_page_is_shown_once_works_and_stops_once_revoked(office):
    http = office["http"]
    page, _ = browser(office, "boss")
    tokens = page.get("/settings/tokens")
    assert tokens.status_code == 200 and "boss-script" in tokens.text and "tim-script" in tokens.text
    csrf = csrf_of(tokens.text)

    made = page.post("/settings/tokens", data={"csrf": csrf, "name": "nagios", "role": "intake", "user": ""},
                     follow_redirects=False)  # fmt: skip
    assert made.status_code == 200  # the answer itself, never a redirect carrying the secret
    assert made.headers["cache-control"] == "no-store" and "set-cookie" not in made.headers
    secret = re.search(r'<code id="token-secret"[^>]*>(tnr_[^<]+)</code>', made.text).group(1)
    assert "copy it now: it will not be shown again" in made.text.lower()
    assert made.text.count(secret) == 1

    intake = http.post("/api/v1/intake/events", json={"client": "x", "title": "disk"}, headers=bearer(secret))
    assert intake.status_code not in (401, 403)  # an intake token posts alerts
    assert http.get("/api/v1/me", headers=bearer(secret)).status_code == 403  # and reads nothing

    reader = page.post("/settings/tokens", data={"csrf": csrf, "name": "dash", "role": "readonly", "user": "tim"})
    dash = re.search(r'<code id="token-secret"[^>]*>(tnr_[^<]+)</code>', reader.text).group(1)
    me = http.get("/api/v1/me", headers=bearer(dash)).json()
    assert me["token"] == "dash" and me["user"] == "tim" and me["role"] == "readonly"

    listed = page.get("/settings/tokens")
    assert secret not in listed.text and dash not in listed.text and 'id="token-secret"' not in listed.text
    assert re.search(r'data-token="dash".*?<td data-label="belongs to">tim</td>', listed.text, re.S)

    taken = page.post("/settings/tokens", data={"csrf": csrf, "name": "dash", "role": "owner", "user": ""})
    assert taken.status_code == 409 and re.search(r'class="field invalid" data-field="name"', taken.text)
    assert 'value="dash"' in taken.text and 'id="token-secret"' not in taken.text
    above = page.post("/settings/tokens", data={"csrf": csrf, "name": "tim-root", "role": "owner", "user": "tim"})
    assert above.status_code == 422 and re.search(r'class="field invalid" data-field="role"', above.text)

    revoked = page.post("/settings/tokens/dash/revoke", data={"csrf": csrf})
    assert "token dash revoked" in " ".join(flash(revoked))
    assert re.search(r'data-token="dash" class="ended revoked".*?revoked 2026-11-24', revoked.text, re.S)
    assert http.get("/api/v1/me", headers=bearer(dash)).status_code == 401
    again = page.post("/settings/tokens/dash/revoke", data={"csrf": csrf})
    assert "no live token" in " ".join(flash(again))

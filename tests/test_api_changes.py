"""REST API v1 writes: every object of the book changed in place, as a script would, with the refusals a
person would meet (unknown field, wrong type, stale version, another client's object, a role that may not)."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tenure import clock
from tenure.accounts import users
from tenure.accounts.users import create_user, create_user_token
from tenure.api.app import create_app
from tenure.book.demo import load_demo

NOW = "2026-11-24T15:00:00Z"


@pytest.fixture
def api(db, monkeypatch) -> Any:
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now(NOW)
    load_demo(db)
    tokens = {}
    for role in ("owner", "technician", "bookkeeper", "readonly"):
        create_user(db, f"{role}-user", "a long enough password", role)
        tokens[role], _ = create_user_token(db, f"{role}-token", None, f"{role}-user")
    with TestClient(create_app(db)) as http:

        def call(method: str, path: str, role: str = "owner", **kwargs: Any) -> Any:
            headers = {"Authorization": f"Bearer {tokens[role]}"} | kwargs.pop("headers", {})
            return http.request(method, f"/api/v1{path}", headers=headers, **kwargs)

        yield call


def test_a_new_client_is_signed_served_and_archived_through_the_api(api):
    made = api("POST", "/clients", json={"key": "fern", "name": "Fern Bakery", "domains": ["fern.example"]})
    assert made.status_code == 201 and made.json()["name"] == "Fern Bakery"
    agreement = {"key": "fern-managed", "kind": "managed", "start": "2026-11-01", "monthly_fee": "600.00",
                 "included_hours": 4, "overage_rate": "120.00", "covers": ["monitoring", "patching"]}  # fmt: skip
    assert api("POST", "/clients/fern/agreements", json=agreement).status_code == 201
    laptop = {"key": "fern-lt1", "hostname": "FERN-LT1"}
    device = api("POST", "/clients/fern/devices", role="technician", json=laptop)
    assert device.status_code == 201 and device.headers["ETag"] == f'"{device.json()["version"]}"'
    patched = api("PATCH", "/clients/fern/devices/fern-lt1", role="technician", json={"os": "Windows 11"})
    assert patched.status_code == 200 and patched.json()["os"] == "Windows 11"
    shown = api("GET", "/clients/fern").json()
    assert shown["class"] == "agreement" and [a["key"] for a in shown["agreements"]] == ["fern-managed"]
    # never billed: deleting the agreement deletes it; the client now has history (none) → purge is allowed
    assert api("DELETE", "/clients/fern/agreements/fern-managed").json()["outcome"] == "deleted"
    retired = api("DELETE", "/clients/fern/devices/fern-lt1", role="technician").json()
    assert retired["outcome"] == "retired" and retired["active"] is False
    archived = api("DELETE", "/clients/fern").json()
    assert archived["outcome"] == "archived"
    assert "fern" not in [c["key"] for c in api("GET", "/clients?limit=500").json()["clients"]]


def test_a_refusal_names_each_field_as_a_problem_document_and_changes_nothing(api):
    answer = api("POST", "/clients/acme/devices", json={"key": "x1", "hostname": 5, "role": "toaster", "colour": 1})
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    names = sorted(p["name"] for p in answer.json()["invalid-params"])
    assert names == ["colour", "hostname", "role"]
    answer = api("PATCH", "/clients/acme/agreements/acme-managed", json={"monthly_fee": "lots"})
    assert answer.status_code == 422
    assert [p["name"] for p in answer.json()["invalid-params"]] == ["monthly_fee"]
    assert api("GET", "/clients/acme/devices/x1").status_code == 404


def test_a_stale_write_is_refused_with_412(api):
    first = api("GET", "/clients/acme/sites/main")
    etag = first.headers["ETag"]
    fresh = api("PATCH", "/clients/acme/sites/main", json={"address": "1 Main St"}, headers={"If-Match": etag})
    assert fresh.is_success
    stale = api("PATCH", "/clients/acme/sites/main", json={"address": "2 Elm St"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.headers["content-type"] == "application/problem+json"
    assert api("GET", "/clients/acme/sites/main").json()["address"] == "1 Main St"
    # a version in the body works the same way
    stale = api("PATCH", "/clients/acme/sites/main", json={"address": "3 Oak St", "version": etag.strip('"')})
    assert stale.status_code == 412
    # a client's first change, too, is made on what its GET gave
    shown = api("GET", "/clients/acme")
    assert shown.headers["ETag"] == f'"{shown.json()["version"]}"'
    fresh = api("PATCH", "/clients/acme", json={"notes": "dental"}, headers={"If-Match": shown.headers["ETag"]})
    assert fresh.is_success
    stale = api("PATCH", "/clients/acme", json={"notes": "other"}, headers={"If-Match": shown.headers["ETag"]})
    assert stale.status_code == 412


def test_another_clients_object_is_not_reachable_and_its_key_not_taken(api):
    assert api("GET", "/clients/harbor/devices/acme-srv01").status_code == 404
    assert api("PATCH", "/clients/harbor/devices/acme-srv01", json={"os": "x"}).status_code == 404
    taken = api("POST", "/clients/harbor/devices", json={"key": "acme-srv01", "hostname": "H1"})
    assert taken.status_code == 422 and "already belongs to client 'acme'" in taken.json()["detail"]
    wrong_site = api("POST", "/clients/harbor/devices", json={"key": "h9", "hostname": "H9", "site": "main"})
    assert wrong_site.status_code == 422
    assert wrong_site.json()["invalid-params"][0]["name"] == "site"


def test_roles_write_what_the_business_says(api):
    device = {"key": "acme-lt7", "hostname": "ACME-LT7"}
    assert api("POST", "/clients/acme/devices", role="readonly", json=device).status_code == 403
    assert api("POST", "/clients/acme/devices", role="bookkeeper", json=device).status_code == 403
    agreement = {"key": "acme-x", "kind": "adhoc", "start": "2026-11-01"}
    assert api("POST", "/clients/acme/agreements", role="technician", json=agreement).status_code == 403
    assert api("POST", "/clients/acme/agreements", role="bookkeeper", json=agreement).status_code == 201
    assert api("POST", "/clients", role="technician", json={"key": "z", "name": "Z"}).status_code == 403


def test_a_billed_agreement_is_ended_not_deleted_and_its_fee_changes_from_a_date(api):
    assert api("POST", "/billing/runs", json={"period": "2026-11"}).is_success
    conflict = api("PATCH", "/clients/acme/agreements/acme-managed", json={"monthly_fee": "1500.00"})
    assert conflict.status_code == 409 and "from a date" in conflict.json()["detail"]
    path = "/clients/acme/agreements/acme-managed"
    moved = api("PATCH", f"{path}?effective=2026-12-01", json={"monthly_fee": "1500.00"})
    assert moved.status_code == 200 and moved.json()["start"] == "2026-12-01"
    assert api("GET", "/clients/acme/agreements/acme-managed").json()["end"] == "2026-11-30"
    ended = api("DELETE", f"/clients/acme/agreements/{moved.json()['key']}?end=2026-12-31").json()
    assert ended["outcome"] == "deleted"  # the new terms were never billed


def test_a_pending_backup_job_is_activated_and_the_change_log_says_who(api):
    job = {"key": "acme-nas", "product": "synology", "name": "NAS copy", "status": "pending"}
    assert api("POST", "/clients/acme/backup-jobs", role="technician", json=job).status_code == 201
    answered = api("POST", "/backup-jobs/acme-nas/activate", role="technician")
    assert answered.status_code == 200 and answered.json()["status"] == "active"
    log = api("GET", "/changes?object=backup-job&key=acme-nas", role="readonly").json()
    assert [c["action"] for c in log["changes"]] == ["update", "create"]
    assert log["changes"][0]["changed"]["status"] == ["pending", "active"]
    assert log["changes"][0]["actor"] == "user:technician-user"


def test_time_logged_on_the_wrong_client_is_moved_then_voided(api):
    logged = api("POST", "/time-entries", role="technician", json={"client": "acme", "minutes": 50,
                                                                    "work_type": "onsite"})  # fmt: skip
    entry = logged.json()["id"]
    read = api("GET", f"/time-entries/{entry}", role="technician")
    assert read.headers["ETag"] == f'"{read.json()["version"]}"'
    correction = {"client": "harbor", "reason": "wrong client"}
    moved = api("PATCH", f"/time-entries/{entry}", role="technician", json=correction,
                headers={"If-Match": read.headers["ETag"]})  # fmt: skip
    assert moved.status_code == 200 and moved.json()["client"] == "harbor"
    # a second technician's correction made on the same reading is refused, by ETag or by version
    stale = api("PATCH", f"/time-entries/{entry}", role="technician", json={"minutes": 90},
                headers={"If-Match": read.headers["ETag"]})  # fmt: skip
    assert stale.status_code == 412
    stale = api("PATCH", f"/time-entries/{entry}", role="technician",
                json={"minutes": 90, "version": read.json()["version"]})  # fmt: skip
    assert stale.status_code == 412
    assert api("GET", f"/time-entries/{entry}", role="technician").json()["minutes"] == 50
    assert api("DELETE", f"/time-entries/{entry}", role="technician", json={}).status_code == 422  # a reason is needed
    voided = api("DELETE", f"/time-entries/{entry}", role="technician", json={"reason": "logged twice"})
    assert voided.status_code == 200 and voided.json()["voided"] is True
    assert api("PATCH", f"/time-entries/{entry}", role="technician", json={"minutes": 10}).status_code == 409
    assert api("DELETE", f"/time-entries/{entry}", role="readonly", json={"reason": "x"}).status_code == 403


def test_a_charge_for_parts_is_recorded_and_voided(api):
    made = api("POST", "/clients/acme/charges", role="bookkeeper",
               json={"description": "SSD 1 TB", "amount": "249.00", "cost": "180.00"})  # fmt: skip
    assert made.status_code == 201 and made.json()["amount"] == "249.00"
    key = made.json()["key"]
    assert api("GET", "/clients/acme/charges").json()[0]["key"] == key
    assert api("POST", "/clients/acme/charges", json={"description": "x", "amount": "lots"}).status_code == 422
    voided = api("DELETE", f"/clients/acme/charges/{key}?reason=duplicate", role="bookkeeper")
    assert voided.status_code == 200


def test_the_msps_settings_and_offers_change_in_place(api):
    shown = api("GET", "/msp", role="readonly")
    assert shown.status_code == 200 and "catalog" not in shown.json()
    changed = api("PATCH", "/msp", json={"payment_terms_days": 15}, headers={"If-Match": shown.headers["ETag"]})
    assert changed.status_code == 200 and changed.json()["payment_terms_days"] == 15
    stale = api("PATCH", "/msp", json={"payment_terms_days": 20}, headers={"If-Match": shown.headers["ETag"]})
    assert stale.status_code == 412
    assert api("PATCH", "/msp", role="bookkeeper", json={"payment_terms_days": 20}).status_code == 403
    refused = api("PATCH", "/msp", json={"payment_terms_days": -1}).json()
    assert refused["invalid-params"][0]["name"] == "payment_terms_days"
    offer = {"key": "pro", "kind": "managed", "monthly_fee": "900.00", "included_hours": 6, "overage_rate": "110.00",
             "covers": ["monitoring", "patching", "incident"]}  # fmt: skip
    assert api("POST", "/catalog", json=offer).status_code == 201
    assert api("POST", "/catalog", json=offer).status_code == 422  # the key is taken
    assert api("PATCH", "/catalog/pro", json={"monthly_fee": "950.00"}).json()["monthly_fee"] == "950.00"
    assert "pro" in [o["key"] for o in api("GET", "/catalog").json()]
    assert api("DELETE", "/catalog/pro").json()["outcome"] == "deleted"


def test_a_mapping_rule_places_alerts_and_is_removed(api):
    made = api("POST", "/mapping-rules", role="technician", json={"client": "harbor", "field": "hostname",
                                                                   "pattern": "HB-NAS"})  # fmt: skip
    assert made.status_code == 201
    assert {"client": "harbor", "field": "hostname", "pattern": "HB-NAS"}.items() <= made.json().items()
    again = api("POST", "/mapping-rules", role="technician", json={"client": "harbor", "field": "hostname",
                                                                    "pattern": "HB-NAS"})  # fmt: skip
    assert again.status_code == 422
    assert api("DELETE", f"/mapping-rules/{made.json()['id']}", role="technician").json()["outcome"] == "deleted"

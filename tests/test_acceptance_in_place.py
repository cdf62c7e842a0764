"""Issue 17's acceptance, through the API alone: a new client signed and served for months with edits along
the way (a quarterly-paid agreement, a device added, time voided in an invoiced month, parts charged, a fee
changed from a date), its invoices checked to the cent, and issued invoices never changed."""

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


@pytest.fixture
def api(db, monkeypatch) -> Any:
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now("2026-09-01T09:00:00Z")
    load_demo(db)
    create_user(db, "olive", "a long enough password", "owner")
    token, _ = create_user_token(db, "olive-script", None, "olive")
    with TestClient(create_app(db)) as http:

        def call(method: str, path: str, **kwargs: Any) -> Any:
            answer = http.request(method, f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)
            assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
            return answer.json()

        yield call


def invoice_of(api, period: str) -> dict[str, Any]:
    (found,) = api("GET", f"/invoices?client=fern&period={period}")["invoices"]
    return found


def lines(invoice: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((line["kind"], line["amount"]) for line in invoice["lines"])


def test_a_client_served_for_months_with_edits_is_invoiced_to_the_cent(api):
    api("POST", "/clients", json={
        "key": "fern", "name": "Fern Bakery",
        "contacts": [{"name": "Ana", "email": "ana@fern.example", "roles": ["primary", "billing"]}],
        "agreements": [{"key": "fern-managed", "kind": "managed", "start": "2026-09-01", "monthly_fee": "600.00",
                        "included_hours": 2, "overage_rate": "120.00", "hourly_rate": "120.00",
                        "covers": ["remote_support", "onsite", "incident"], "billing_interval_months": 3}],
    })  # fmt: skip
    entry = api("POST", "/time-entries", json={"client": "fern", "minutes": 180, "work_type": "remote_support",
                                               "date": "2026-09-10"})  # fmt: skip
    assert [(p["layer"], p["minutes"]) for p in entry["paid_by"]] == [("included", 120), ("billable", 60)]

    api("POST", "/billing/runs", json={"period": "2026-09"})
    september = invoice_of(api, "2026-09")
    assert september["total"] == "1800.00"  # three months of fee in advance: a quarterly agreement

    clock.set_now("2026-10-01T09:00:00Z")
    api("POST", "/clients/fern/devices", json={"key": "fern-pos1", "hostname": "FERN-POS1", "role": "workstation"})
    api("POST", "/billing/runs", json={"period": "2026-10"})
    october = invoice_of(api, "2026-10")
    assert lines(october) == [("overage", "120.00")]  # September's hour past the included two, in arrears
    api("POST", f"/invoices/{october['number']}/issue")

    clock.set_now("2026-10-15T09:00:00Z")
    api("DELETE", f"/time-entries/{entry['id']}", json={"reason": "logged on the wrong client"})
    api("POST", "/clients/fern/charges", json={"description": "Receipt printer", "amount": "249.00",
                                               "cost": "180.00", "date": "2026-10-20"})  # fmt: skip
    api("PATCH", "/clients/fern/agreements/fern-managed?effective=2026-12-01", json={"monthly_fee": "750.00"})

    clock.set_now("2026-11-01T09:00:00Z")
    api("POST", "/billing/runs", json={"period": "2026-11"})
    november = invoice_of(api, "2026-11")
    assert lines(november) == [("adjustment", "-120.00"), ("charge", "249.00")]
    assert november["total"] == "129.00"

    clock.set_now("2026-12-01T09:00:00Z")
    api("POST", "/billing/runs", json={"period": "2026-12"})
    december = invoice_of(api, "2026-12")
    assert december["total"] == "2250.00"  # the new fee, three months in advance from its first day

    # what was issued never changed
    assert invoice_of(api, "2026-10")["total"] == "120.00" and invoice_of(api, "2026-09")["total"] == "1800.00"
    history = api("GET", "/changes?object=client&key=fern")["changes"]
    assert {c["actor"] for c in history} == {"user:olive"}

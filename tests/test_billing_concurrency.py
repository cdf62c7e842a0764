"""Billing runs of one month started at the same time: the later ones wait for the first and change nothing;
one that cannot wait long enough says so in one line (command line) or a 409 problem (API), never a 500.
Changes to what a run reads wait until it has committed, and a run waits for the changes under way."""

from __future__ import annotations

import contextvars
import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tenure import clock
from tenure.accounts.service import create_token
from tenure.agreements.changes import void_time_entry
from tenure.agreements.service import log_time
from tenure.api.app import create_app
from tenure.billing import service
from tenure.billing.charges import add_charge
from tenure.billing.models import Invoice
from tenure.book.objects import patch_item
from tenure.book.service import import_book
from tenure.clients.models import Client
from tenure.db.locks import hold, hold_inputs
from tenure.errors import Busy
from tenure.settings import get_settings
from tests.test_billing import MANAGED, book, lines_of
from tests.test_time_corrections import ADHOC, entry_id

CLIENTS = 12
RUN_AT = "2026-11-01T07:00:00Z"


def clients() -> list[dict[str, Any]]:
    found = []
    for n in range(CLIENTS):
        client = copy.deepcopy(MANAGED)
        client["key"], client["name"] = f"client{n:02d}", f"Client {n}"
        client["agreements"][0]["key"] = f"client{n:02d}-m"
        for entry in client["time_entries"]:
            entry["key"] = f"client{n:02d}-{entry['key']}"
        found.append(client)
    return found


def at_once(*works: Callable[[], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run each of `works` on a thread of its own, released together (with this test's clock); the results
    and the errors."""
    barrier = threading.Barrier(len(works))
    results: list[Any] = []
    errors: list[BaseException] = []

    def one(context: contextvars.Context, work: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results.append(context.run(work))
        except BaseException as exc:  # the test reports every one
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(contextvars.copy_context(), work)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def invoices_per_client(db) -> dict[str, int]:
    with db.reader() as s:
        rows = s.execute(
            select(Client.key, func.count(Invoice.id))
            .join(Invoice, Invoice.client_id == Client.id)
            .where(Invoice.period == "2026-11")
            .group_by(Client.key)
        )
        return {key: count for key, count in rows}


@pytest.mark.parametrize("runs", [2, 3])
def test_runs_of_one_month_at_once_make_one_invoice_per_client(db, runs):
    import_book(db, book(*clients()))
    clock.set_now(RUN_AT)
    results, errors = at_once(*[lambda: service.run_billing(db, "2026-11").as_json()] * runs)
    assert errors == []
    assert invoices_per_client(db) == {f"client{n:02d}": 1 for n in range(CLIENTS)}
    # one run made them all; the others found them made and changed nothing, as a rerun does
    assert sorted(r["created"] for r in results) == [0] * (runs - 1) + [CLIENTS]
    assert all(r["already_invoiced"] == CLIENTS for r in results if r["created"] == 0)
    assert service.run_billing(db, "2026-11").as_json()["created"] == 0


def test_runs_of_two_months_of_one_year_at_once_number_their_invoices_apart(db):
    import_book(db, book(*clients()))
    clock.set_now("2026-12-01T07:00:00Z")
    results, errors = at_once(lambda: service.run_billing(db, "2026-11"), lambda: service.run_billing(db, "2026-12"))
    assert errors == []
    made = [(invoice["number"], invoice["client"]) for result in results for invoice in result.invoices]
    numbers = [number for number, _ in made]
    assert len(set(numbers)) == len(numbers) and {client for _, client in made} == {c["key"] for c in clients()}


def test_a_run_that_cannot_wait_long_enough_says_so(db, monkeypatch):
    import_book(db, book(*clients()[:1]))
    clock.set_now(RUN_AT)
    monkeypatch.setattr(get_settings(), "lock_timeout", 0.3)
    with db.unit_of_work() as other:  # a run of November, still going
        hold(other, "billing-run", 202611, "the billing run of 2026-11")
        with pytest.raises(Busy, match="billing run of 2026-11 is busy"):
            service.run_billing(db, "2026-11")
    assert invoices_per_client(db) == {}
    assert service.run_billing(db, "2026-11").as_json()["created"] == 1


def test_the_command_line_says_a_busy_run_in_one_line(db, cli):
    import_book(db, book(*clients()[:1]))
    with db.unit_of_work() as other:
        hold(other, "billing-run", 202611, "the billing run of 2026-11")
        result = cli(
            "billing", "run", "--period", "2026-11", "--now", RUN_AT, check=False, env={"TENURE_LOCK_TIMEOUT": "0.3"}
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: the billing run of 2026-11 is busy")
    assert "Error" not in result.stderr and "Traceback" not in result.stderr


def test_runs_of_one_month_at_once_through_the_api(db, monkeypatch):
    import_book(db, book(*clients()))
    clock.set_now(RUN_AT)
    token, _ = create_token(db, "books", "bookkeeper")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(db)) as http:
        answers, errors = at_once(
            *[lambda: http.post("/api/v1/billing/runs", json={"period": "2026-11"}, headers=headers)] * 3
        )
        assert errors == []
        assert sorted(a.status_code for a in answers) == [200, 200, 200], [a.text for a in answers]
        assert sorted(a.json()["created"] for a in answers) == [0, 0, CLIENTS]
        assert invoices_per_client(db) == {f"client{n:02d}": 1 for n in range(CLIENTS)}

        monkeypatch.setattr(get_settings(), "lock_timeout", 0.3)
        with db.unit_of_work() as other:  # another run of December holds it for longer than we wait
            hold(other, "billing-run", 202612, "the billing run of 2026-12")
            busy = http.post("/api/v1/billing/runs", json={"period": "2026-12"}, headers=headers)
        assert busy.status_code == 409
        assert busy.headers["content-type"].startswith("application/problem+json")
        assert "billing run of 2026-12 is busy" in busy.json()["detail"]


@contextmanager
def run_under_way(db, monkeypatch, period: str = "2026-11") -> Iterator[dict[str, Any]]:
    """A billing run of `period` on a thread of its own that has taken its locks and read what it settles, held
    there until the block ends; then its result (or error) in the dict yielded."""
    settling, release = threading.Event(), threading.Event()
    settle = service._settle

    def held_settle(*args: Any) -> Any:
        settling.set()
        assert release.wait(60)
        return settle(*args)

    monkeypatch.setattr(service, "_settle", held_settle)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = service.run_billing(db, period).as_json()
        except BaseException as exc:  # the test reports it
            outcome["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,))
    thread.start()
    try:
        assert settling.wait(60), outcome
        yield outcome
    finally:
        release.set()
        thread.join()


def test_changes_to_what_a_run_reads_wait_for_it_and_say_so(db, monkeypatch):
    import_book(db, book(*clients()[:2]))
    clock.set_now(RUN_AT)
    voided = entry_id(db, "client00-t1")
    changes = {
        "log time": lambda: log_time(db, "client00", 30, "remote_support", date(2026, 10, 30)),
        "void an entry": lambda: void_time_entry(db, voided, "not our work"),
        "change an agreement": lambda: patch_item(
            db, "client01", "agreements", "client01-m", {"hourly_rate": "99"}, effective=date(2026, 12, 1)
        ),
        "add a charge": lambda: add_charge(db, "client01", "Cable", "25.00"),
        "buy a block": lambda: service.buy_block(db, "client01", Decimal(5), Decimal(500)),
    }
    monkeypatch.setattr(get_settings(), "lock_timeout", 0.3)
    with run_under_way(db, monkeypatch) as outcome:
        for name, change in changes.items():
            with pytest.raises(Busy) as refused:
                change()
            assert "0.3 s" in str(refused.value) and "try again" in str(refused.value), name
    assert "error" not in outcome and outcome["result"]["created"] == 2
    for change in changes.values():  # once the run has committed, each goes through
        change()


def test_a_run_waits_for_the_changes_under_way(db, monkeypatch):
    import_book(db, book(*clients()[:1]))
    clock.set_now(RUN_AT)
    monkeypatch.setattr(get_settings(), "lock_timeout", 0.3)
    with db.unit_of_work() as change:  # a change still being made
        hold_inputs(change)
        with pytest.raises(Busy, match="billing run of 2026-11"):
            service.run_billing(db, "2026-11")
    assert invoices_per_client(db) == {}
    assert service.run_billing(db, "2026-11").as_json()["created"] == 1


def test_an_entry_voided_while_a_run_settles_is_credited_on_the_next_invoice(db, monkeypatch):
    """The void waits for the run, so it finds the entry invoiced and credits it; had it gone through at once,
    the run would bill the entry and nothing would ever give it back."""
    import_book(db, book(ADHOC))
    clock.set_now(RUN_AT)
    failed: list[BaseException] = []

    def void() -> None:
        try:
            void_time_entry(db, entry_id(db, "t1"), "billed to the wrong client")
        except BaseException as exc:  # the test reports it
            failed.append(exc)

    with run_under_way(db, monkeypatch) as outcome:
        voiding = threading.Thread(target=contextvars.copy_context().run, args=(void,))
        voiding.start()
        voiding.join(1.0)
        assert voiding.is_alive()  # waiting for the run, not done beside it
    voiding.join()
    assert failed == [] and "error" not in outcome
    (november,) = outcome["result"]["invoices"]
    assert lines_of(november) == [("hourly", "262.50")]  # billed: the run read the entry before the void
    clock.set_now("2026-12-01T07:00:00Z")
    (december,) = service.run_billing(db, "2026-12").invoices
    assert lines_of(december) == [("adjustment", "-187.50")]  # 61 minutes rounded to 75 at 150.00, given back

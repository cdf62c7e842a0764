"""Changing things in place: every object of the book, through the same shape as the book."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from sqlalchemy import select

from tenure import clock
from tenure.billing.service import run_billing
from tenure.book import objects
from tenure.book.service import export_book, import_book
from tenure.clients import changes as clients
from tenure.clients.service import list_clients
from tenure.db.changelog import ObjectChange
from tenure.errors import Conflict, NotFound, Stale, ValidationFailed
from tests.books import SMALL


@pytest.fixture
def book(db):
    clock.set_now("2026-10-15T12:00:00Z")
    import_book(db, copy.deepcopy(SMALL))
    return db


def test_a_device_is_added_changed_and_retired_in_the_books_shape(book):
    made = objects.create_item(book, "acme", "devices", {"key": "acme-lt9", "hostname": "ACME-LT9", "site": "main"})
    assert made["hostname"] == "ACME-LT9" and made["site"] == "main" and made["version"]
    changed = objects.patch_item(book, "acme", "devices", "acme-lt9", {"os": "Windows 11"}, made["version"])
    assert changed["os"] == "Windows 11" and changed["hostname"] == "ACME-LT9"
    assert changed["version"] != made["version"]
    gone = objects.remove_item(book, "acme", "devices", "acme-lt9")
    assert gone["outcome"] == "retired" and gone["active"] is False
    # the book shows it, retired, and imports back the same
    exported = export_book(book)
    (acme,) = [c for c in exported["clients"] if c["key"] == "acme"]
    assert {"key": "acme-lt9", "hostname": "ACME-LT9", "site": "main", "os": "Windows 11", "active": False} in [
        {k: d.get(k) for k in ("key", "hostname", "site", "os", "active") if k in d} for d in acme["devices"]
    ]


def test_a_refusal_names_each_field_and_changes_nothing(book):
    with pytest.raises(ValidationFailed) as refused:
        objects.create_item(book, "acme", "devices", {"key": "x1", "hostname": "", "role": "toaster", "colour": 1})
    places = sorted(p.split(":")[0] for p in refused.value.problems)
    assert places == ["colour", "hostname", "role"]
    with pytest.raises(ValidationFailed, match="site: no site 'attic'"):
        objects.create_item(book, "acme", "devices", {"key": "x1", "hostname": "X1", "site": "attic"})
    assert [d["key"] for d in objects.list_items(book, "acme", "devices") if d["key"] == "x1"] == []


def test_a_key_of_another_client_is_refused(book):
    other = copy.deepcopy(SMALL["clients"][0]) | {"key": "beta", "name": "Beta Law", "domains": []}
    for name in ("agreements", "blocks", "devices", "accounts", "backup_jobs", "time_entries", "retainer_deposits"):
        other[name] = []
    clients.add_client(book, other)
    device = objects.list_items(book, "acme", "devices")[0]["key"]
    with pytest.raises(ValidationFailed, match=f"key: '{device}' already belongs to client 'acme'"):
        objects.create_item(book, "beta", "devices", {"key": device, "hostname": "B1"})
    with pytest.raises(NotFound):  # another client's object is not reachable through this one
        objects.patch_item(book, "beta", "devices", device, {"os": "x"})


def test_a_stale_version_is_refused(book):
    first = objects.list_items(book, "acme", "contacts")[0]
    objects.patch_item(book, "acme", "contacts", str(first["id"]), {"phone": "555-0100"}, first["version"])
    with pytest.raises(Stale):
        objects.patch_item(book, "acme", "contacts", str(first["id"]), {"phone": "555-0199"}, first["version"])
    assert objects.get_item(book, "acme", "contacts", str(first["id"]))["phone"] == "555-0100"


def test_a_billed_agreement_changes_its_fee_only_from_a_date(book):
    run_billing(book, "2026-09")
    with pytest.raises(Conflict, match="monthly_fee change only from a date"):
        objects.patch_item(book, "acme", "agreements", "acme-managed", {"monthly_fee": "1500.00"})
    new = objects.patch_item(
        book, "acme", "agreements", "acme-managed", {"monthly_fee": "1500.00"}, effective=date(2026, 11, 1)
    )
    assert new["key"] == "acme-managed-from-2026-11-01" and new["start"] == "2026-11-01"
    assert new["monthly_fee"] == "1500.00"
    old = objects.get_item(book, "acme", "agreements", "acme-managed")
    assert old["end"] == "2026-10-31" and old["monthly_fee"] == "1200.00"
    november = run_billing(book, "2026-11")
    assert november


def test_new_terms_from_a_date_the_former_system_billed_through_do_not_bill_those_days_again(book):
    # billed by the former system through December: new terms from October start billing in January, once
    clients.add_client(book, {"key": "beta", "name": "Beta Bakery"})
    objects.create_item(
        book, "beta", "agreements",
        {"key": "beta-watch", "kind": "monitoring", "start": "2026-06-01", "monthly_fee": "100.00",
         "covers": ["monitoring"], "billed_through": "2026-12-31"},
    )  # fmt: skip
    new = objects.patch_item(
        book, "beta", "agreements", "beta-watch", {"monthly_fee": "130.00"}, effective=date(2026, 10, 1)
    )
    assert new["billed_through"] == "2026-12-31"
    clock.set_now("2027-01-02T12:00:00Z")
    january = run_billing(book, "2027-01")
    (invoice,) = [i for i in january.invoices if i["client"] == "beta"]
    assert [(line["description"], line["amount"]) for line in invoice["lines"]] == [
        ("beta-watch-from-2026-10-01: January 2027", "130.00")
    ]


def test_an_agreement_never_billed_is_deleted_a_billed_one_ended(book):
    objects.create_item(
        book, "acme", "agreements", {"key": "acme-extra", "kind": "adhoc", "start": "2026-10-01"}
    )
    assert objects.remove_item(book, "acme", "agreements", "acme-extra")["outcome"] == "deleted"
    run_billing(book, "2026-09")
    ended = objects.remove_item(book, "acme", "agreements", "acme-managed")
    assert ended["outcome"] == "ended" and ended["end"] == "2026-10-15"


def test_a_client_is_signed_edited_archived_and_only_an_empty_one_purged(book):
    made = clients.add_client(
        book,
        {
            "key": "fern",
            "name": "Fern Bakery",
            "contacts": [{"name": "Ana", "email": "ana@fern.example", "roles": ["primary", "billing"]}],
            "agreements": [{"key": "fern-adhoc", "kind": "adhoc", "start": "2026-10-01"}],
        },
    )
    assert made["name"] == "Fern Bakery"
    with pytest.raises(ValidationFailed, match=r"^name: "):
        clients.edit_client(book, "fern", {"name": ""})
    edited = clients.edit_client(book, "fern", {"notes": "bakery chain"}, made["version"])
    assert edited["notes"] == "bakery chain" and edited["name"] == "Fern Bakery"
    with pytest.raises(Conflict, match="has history"):
        clients.archive_client(book, "fern", purge=True)
    assert clients.archive_client(book, "fern")["outcome"] == "archived"
    assert "fern" not in {v.key for v in list_clients(book, clock.today())}
    assert "fern" in {v.key for v in list_clients(book, clock.today(), archived=True)}
    clients.add_client(book, {"key": "oops", "name": "Typo Inc"})
    assert clients.archive_client(book, "oops", purge=True)["outcome"] == "deleted"
    with pytest.raises(NotFound):
        clients.get_client(book, "oops")
    # a prospect with a contact and a site has no history either: purged with them, each deletion logged
    clients.add_client(
        book,
        {
            "key": "pros",
            "name": "Prospect Ltd",
            "contacts": [{"name": "Bo", "email": "bo@pros.example", "roles": ["primary"]}],
            "sites": [{"key": "pros-hq", "name": "HQ"}],
        },
    )
    assert clients.archive_client(book, "pros", purge=True)["outcome"] == "deleted"
    with book.reader() as s:
        gone = s.execute(
            select(ObjectChange.object_type, ObjectChange.client_id).where(ObjectChange.action == "delete")
        ).all()
    assert {"client", "contact", "site"} <= {kind for kind, _ in gone}


def test_every_change_is_in_the_change_log(book):
    objects.create_item(book, "acme", "sites", {"key": "annex", "name": "Annex"})
    objects.patch_item(book, "acme", "sites", "annex", {"address": "1 Main St"})
    with book.reader() as s:
        changes = s.scalars(
            select(ObjectChange).where(ObjectChange.object_type == "site").order_by(ObjectChange.id)
        ).all()
        assert [c.action for c in changes][-2:] == ["create", "update"]
        assert changes[-1].after["address"] == "1 Main St"


def test_a_pending_backup_job_is_activated(book):
    job = objects.create_item(book, "acme", "backup-jobs", {"key": "nas-copy", "product": "synology", "name": "NAS",
                                                             "status": "pending"})
    assert job["status"] == "pending"
    answered = objects.set_job_status(book, "nas-copy", "activate")
    assert answered["status"] == "active" and answered["client"] == "acme"


def test_an_objects_history_says_who_changed_what(book):
    from tenure.book.history import history
    from tenure.db.uow import as_actor

    with as_actor("user:terry"):
        objects.patch_item(book, "acme", "agreements", "acme-managed", {"end": "2027-12-31"})
    found = history(book, "agreement", "acme-managed")
    latest = found["changes"][0]
    assert latest["actor"] == "user:terry" and latest["action"] == "update"
    assert latest["changed"]["end"] == [None, "2027-12-31"]
    # a client's history holds its objects' changes too
    assert any(c["object"] == "agreement" for c in history(book, "client", "acme")["changes"])
    with pytest.raises(ValidationFailed, match="object: 'spaceship'"):
        history(book, "spaceship", "x")


def test_an_objects_history_is_found_by_the_number_lists_print_even_once_it_is_gone(book):
    from tenure.agreements.service import log_time
    from tenure.book.history import history

    logged = log_time(book, "acme", 30, "remote_support", date(2026, 10, 14))
    by_key, by_id = history(book, "time-entry", logged.key), history(book, "time-entry", str(logged.id))
    assert by_id["changes"] == by_key["changes"] and by_id["changes"][-1]["action"] == "create"
    made = objects.create_item(book, "acme", "contacts", {"name": "Pat", "email": "pat@acme.example"})
    objects.remove_item(book, "acme", "contacts", str(made["id"]))
    removed = history(book, "contact", str(made["id"]))
    assert [c["action"] for c in removed["changes"]] == ["delete", "create"]

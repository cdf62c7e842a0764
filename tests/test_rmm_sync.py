"""`tenure sync rmm` against the fake Tactical RMM: agents become devices; a second sync changes nothing."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from tenure.book.service import import_book
from tenure.clients.accounts import set_secret
from tenure.clients.models import Device
from tenure.connectors.rmm_sync import sync_rmm
from tenure.db.changelog import ObjectChange
from tests.fakes.tacticalrmm import acme_book, running, seed_acme


def test_agents_checks_and_tasks_become_devices_and_a_second_sync_changes_nothing(db):
    with running(api_key="tk-secret") as fake:
        seed_acme(fake, devices=3)
        fake.add_agent("NEWAGENT000000000000000000000000000000001", "ACME-LAPTOP9", 7, checks=["ping"])
        import_book(db, acme_book(fake.url, devices=2))
        set_secret(db, "acme-rmm", "tk-secret")
        (first,) = sync_rmm(db, "acme-rmm")
        assert first.error is None and (first.created, first.updated) == (2, 2)
        with db.reader() as s:
            laptop = s.scalars(select(Device).where(Device.hostname == "ACME-LAPTOP9")).one()
            assert laptop.rmm_id.startswith("NEWAGENT") and laptop.checks == ["ping check"]
            dc = s.scalars(select(Device).where(Device.key == "acme-dc01")).one()
            assert "automated_tasks" in dc.features and dc.checks  # the RMM's checks replace the book's
            logged = s.scalar(select(func.count()).select_from(ObjectChange))
        (second,) = sync_rmm(db, "acme-rmm")
        assert (second.created, second.updated, second.unchanged, second.deactivated) == (0, 0, 4, 0)
        with db.reader() as s:
            assert s.scalar(select(func.count()).select_from(ObjectChange)) == logged
        fake.drop_agent("NEWAGENT000000000000000000000000000000001")
        assert sync_rmm(db, "acme-rmm")[0].deactivated == 1


def test_an_account_without_a_key_says_what_it_needs(cli, db):
    with running() as fake:
        import_book(db, acme_book(fake.url))
        result = json.loads(cli("sync", "rmm", "--json").stdout)
        assert "API key" in result["accounts"][0]["error"]

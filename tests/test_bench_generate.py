"""The synthetic MSP that every benchmark uses: deterministic by seed, and a real, usable book of data."""

from __future__ import annotations

import argparse

import pytest
from sqlalchemy import select, text

import bench.run as run
from bench.generate import Scale, add_client, generate
from bench.writes import measure_patches, measure_voids
from tenure.agreements.changes import void_time_entry
from tenure.agreements.models import TimeEntry
from tenure.agreements.service import allocate_clients
from tenure.clients.service import client_views
from tenure.db.engine import Database


def _dump(db: Database) -> list[tuple]:
    with db.engine.connect() as c:
        return [
            *c.execute(text("SELECT client_id, key, date, minutes, work_type FROM time_entry ORDER BY client_id, key")),
            *c.execute(text("SELECT client_id, key, hostname FROM device ORDER BY id")),
            *c.execute(text("SELECT client_id, fingerprint, decision, first_seen FROM alert ORDER BY id")),
        ]


def test_same_seed_same_msp_and_every_kind_of_client(tmp_path):
    scale = Scale(clients=30, devices=300, time_entries=2000, alerts=500, backup_jobs=40, seed=7)
    first, second = Database(f"sqlite:///{tmp_path / 'a.db'}"), Database(f"sqlite:///{tmp_path / 'b.db'}")
    for db in (first, second):
        db.migrate()
    written = generate(first, scale)
    generate(second, scale)
    assert _dump(first) == _dump(second)
    assert written["time_entry"] == 2000 and written["device"] == 300 and written["alert"] == 500
    with first.reader() as s:
        classes = {v.klass for v in client_views(s, scale.end)}
    assert {"agreement", "prepaid", "lapsed"} <= classes


def test_another_seed_gives_another_msp(tmp_path):
    a, b = Database(f"sqlite:///{tmp_path / 'a.db'}"), Database(f"sqlite:///{tmp_path / 'b.db'}")
    for db, seed in ((a, 1), (b, 2)):
        db.migrate()
        generate(db, Scale(clients=10, devices=50, time_entries=200, alerts=50, backup_jobs=5, seed=seed))
    assert _dump(a) != _dump(b)


def test_an_added_client_has_its_entries_and_every_table_free_ids_after_explicit_ones(db):
    """On PostgreSQL too: the generator writes explicit ids, and rows added afterwards still get free ones."""
    scale = Scale(clients=12, devices=60, time_entries=300, alerts=50, backup_jobs=6, seed=3)
    generate(db, scale)
    cid = add_client(db, scale, "cvoid", 400)
    assert cid == scale.clients + 1
    with db.unit_of_work() as s:
        allocate_clients(s, [cid])
    with db.reader() as s:
        entries = s.scalars(select(TimeEntry.id).where(TimeEntry.client_id == cid).order_by(TimeEntry.id)).all()
    assert len(entries) == 400
    assert void_time_entry(db, entries[0], "bench")["voided"]


def test_the_write_benchmarks_run_at_a_tiny_scale(tmp_path):
    """What bench.writes measures (no figure is checked: timings belong to `python -m bench.run`)."""
    scale = Scale(clients=12, devices=60, time_entries=300, alerts=50, backup_jobs=6, seed=3)
    db = Database(f"sqlite:///{tmp_path / 'msp.db'}")
    db.migrate()
    generate(db, scale)
    voids = measure_voids(db, scale, entries=200, voids=4)
    assert voids["voids"] == 4 and voids["voids_in_invoiced_months"] == 2 and voids["voided_entries"] == 9
    assert voids["with_startup_heap_frozen"]["voids"] == 4
    assert voids["client_invoice"] and {"p50_ms", "p95_ms", "max_ms", "limit_ms"} <= voids.keys()
    patches = measure_patches(db, scale, requests=6, warmup=1)
    assert patches["requests"] == 6 and patches["via"] == "http"
    assert {kind: k["requests"] for kind, k in patches["kinds"].items()} == {
        "device_os": 2,
        "contact_phone": 2,
        "agreement_end": 2,
    }
    assert patches["agreements_ended_2030"] >= 1 and patches["agreement_patches_of_billed"] >= 1
    assert not list(tmp_path.glob("msp.db.*.db"))  # the scratch copies are gone


def test_only_takes_benchmarks_comma_separated_or_repeated():
    assert run._names("patch_p95, void_reallocate") == ["patch_p95", "void_reallocate"]
    with pytest.raises(argparse.ArgumentTypeError):
        run._names("patch_p95,nope")

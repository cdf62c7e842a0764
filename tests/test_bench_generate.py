"""The synthetic MSP that every benchmark uses: deterministic by seed, and a real, usable book of data."""

from __future__ import annotations

from sqlalchemy import text

from bench.generate import Scale, generate
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

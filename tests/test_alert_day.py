"""An alert is decided on the day it happened, as Tenure counts days (UTC): one instant is one day, whichever
offset its sender wrote it with."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tenure import clock
from tenure.agreements.models import Agreement
from tenure.book.demo import load_demo
from tenure.intake import service as intake


@pytest.fixture
def demo(db):
    clock.set_now("2026-12-05T12:00:00Z")
    load_demo(db)
    return db


def test_one_instant_is_one_day_whichever_offset_its_sender_writes(demo):
    # acme's managed agreement starts on a day: an alert at the same instant, written with Z or with -05:00,
    # falls on the same side of that start (the day as Tenure counts days, UTC)
    with demo.reader() as s:
        start = s.scalar(select(Agreement.start).where(Agreement.key == "acme-managed"))
    instant_z = f"{start.isoformat()}T01:00:00Z"
    day_before = start.fromordinal(start.toordinal() - 1).isoformat()
    instant_minus_5 = f"{day_before}T20:00:00-05:00"  # the same instant
    events = [
        {"source": "k", "title": "Z", "status": "firing", "client": "acme", "time": instant_z, "fingerprint": "tz-z"},
        {
            "source": "k",
            "title": "-05",
            "status": "firing",
            "client": "acme",
            "time": instant_minus_5,
            "fingerprint": "tz-5",
        },
    ]
    first, second = intake.ingest_many(demo, "event", [json.dumps(events).encode()])
    assert (first.decision, first.reason) == (second.decision, second.reason)

"""Intake with the MSP's mapping rules: the same storm processed on two copies of the generated MSP, one with
500 mapping rules and one without, in process.

Registered into bench.registry's table when bench.run loads its plugins. An MSP places what names no client by
mapping rules (a site's hostnames, a vendor's sender domain, a label, a word in the subject), and every alert
is weighed against them: until they were filed by field and letters (`triage.rules.CompiledRules`), each
distinct sender of a batch was matched against every rule in every tier, and 200 rules cut intake to a third.
The events name their client and carry a hostname, a site label and a subject. The rules, one for each of
500 of the clients, are of five kinds: those on hostnames, sites and subjects match their client's events and
place each with the client it names (so both copies decide the same), those on senders and sender domains
match none (no event has a sender). Measures only: the figures are printed beside the limit, nothing is
asserted.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from sqlalchemy import insert, select

import bench.run as run
from bench.generate import Scale
from bench.registry import bench
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.intake import service as intake
from tenure.intake.models import MappingRule

RULES = 500
EVENTS = 20_000
SHARE = 0.8  # the storm with 500 rules at no less than four fifths of its rate without any


def _events(scale: Scale, n: int, seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        client = f"c{rng.randrange(1, scale.clients + 1):05d}"
        events.append(
            json.dumps(
                {
                    "source": "bench",
                    "client": client,
                    "host": f"{client}-srv{i % 7}",
                    "labels": {"site": f"{client}-site{i % 3}"},
                    "title": f"Disk low {i % 500} ({client})",
                    "status": "firing",
                    "service": "monitoring",
                    "fingerprint": f"disk-{i % 500}",
                }
            ).encode()
        )
    return events


def _rules(db: Database) -> None:
    """500 rules over the clients, of every kind: exact patterns and globs by beginning, end and middle."""
    kinds = (
        ("hostname", "{key}-*"),
        ("sender_domain", "mail.{key}.example"),
        ("label:site", "{key}-site*"),
        ("subject", "*({key})*"),
        ("sender", "*@{key}.vendor.example"),
    )
    with db.unit_of_work() as s:
        ids = dict(s.execute(select(Client.key, Client.id).order_by(Client.id).limit(RULES)).all())
        rows = [
            {"client_id": cid, "field": kinds[i % len(kinds)][0], "pattern": kinds[i % len(kinds)][1].format(key=key)}
            for i, (key, cid) in enumerate(sorted(ids.items()))
        ]
        s.execute(insert(MappingRule), rows)


def _rate(db: Database, scale: Scale, name: str, with_rules: bool) -> float:
    target = run._copy(db, name)
    if with_rules:
        _rules(target)
    bodies = _events(scale, EVENTS)
    began = time.perf_counter()
    for start in range(0, EVENTS, intake.BATCH):
        intake.ingest_many(target, "event", bodies[start : start + intake.BATCH])
    target.settle()
    seconds = time.perf_counter() - began
    target.engine.dispose()
    run.drop_copies(db, name)
    return EVENTS / seconds


@bench
def intake_mapping_rules(db: Database, scale: Scale) -> dict[str, Any]:
    """The same storm with and without 500 mapping rules, processed in process."""
    without = _rate(db, scale, "norules", with_rules=False)
    with_rules = _rate(db, scale, "rules", with_rules=True)
    return {
        "alerts": EVENTS,
        "mapping_rules": RULES,
        "alerts_per_second_without_rules": round(without),
        "alerts_per_second_with_rules": round(with_rules),
        "share_with_rules": round(with_rules / without, 3),
        "limit_share": SHARE,
        "within_limit": with_rules / without >= SHARE,
    }

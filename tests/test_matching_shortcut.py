"""Intake places an event that names its client without weighing the matching tiers (`MatchIndex.client_of`):
whatever the hints, the client it finds is the one the matching rules (`triage.rules.match_client`) find over
the same candidates, so the shortcut never places an alert differently."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tenure import clock
from tenure.book.demo import load_demo
from tenure.clients.models import Client
from tenure.intake.matching import MatchIndex
from tenure.intake.sources import Signal
from tenure.triage import rules as triage

NAMES = ["acme", "ACME", "Acme Dental", "acme  dental", "  Acme Dental ", "harbor", "Harbor Law", "cedar", "zzz", "x y"]
HOSTS = ["ACME-SRV01", "acme-srv01.acmedental.example", "HARBOR-WS01", "nowhere", "acme-srv01."]
SENDERS = ["alerts@acmedental.example", "ops@mail.harborlaw.example", "x@unknown.example", "not an address"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    hint=st.none() | st.sampled_from(NAMES),
    host=st.none() | st.sampled_from(HOSTS),
    sender=st.none() | st.sampled_from(SENDERS),
    labels=st.dictionaries(st.sampled_from(["client", "tenant", "site"]), st.sampled_from(NAMES), max_size=2),
)
def test_the_client_an_event_names_is_the_one_the_matching_rules_find(db, hint, host, sender, labels):
    with db.reader() as s:
        loaded = s.scalar(select(func.count()).select_from(Client))
    if not loaded:  # read only below: the demo is loaded once for every example
        clock.set_now("2026-11-24T15:00:00Z")
        load_demo(db)
    signal = Signal(
        source="event", kind="alert", status="firing", title="Disk low", severity="warning", service="monitoring",
        fingerprint="disk", client_hint=hint, hostname=host, sender=sender, labels=labels,
    )  # fmt: skip
    with db.reader() as s:
        index = MatchIndex(s, [signal])
        expected = triage.match_client(signal.hints(), index.candidates(signal))
        assert index.client_of(signal, None) == expected

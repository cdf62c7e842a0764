"""Intake places an event that names its client without weighing the matching tiers (`MatchIndex.client_of`),
and weighs the MSP's mapping rules as it keeps them ready (`triage.rules.CompiledRules`): whatever the hints,
the client it finds is the one the matching rules (`triage.rules.match_client`) find over the mapping rules
and the same candidates, so neither places an alert differently."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tenure import clock
from tenure.book.demo import load_demo
from tenure.clients.models import Client
from tenure.intake.matching import MatchIndex
from tenure.intake.models import MappingRule
from tenure.intake.sources import Signal
from tenure.triage import rules as triage

NAMES = ["acme", "ACME", "Acme Dental", "acme  dental", "  Acme Dental ", "harbor", "Harbor Law", "cedar", "zzz", "x y"]
HOSTS = ["ACME-SRV01", "acme-srv01.acmedental.example", "HARBOR-WS01", "nowhere", "acme-srv01."]
SENDERS = ["alerts@acmedental.example", "ops@mail.harborlaw.example", "x@unknown.example", "not an address"]


# rules that outrank a client's name for some of the hosts, senders and sites above (exact patterns and globs)
MAPPING = [
    ("harbor", "hostname", "acme-srv01*"),
    ("cedar", "hostname", "acme-srv01.acmedental.example"),
    ("cedar", "sender_domain", "*.harborlaw.example"),
    ("acme", "label:site", "harbor*"),
    ("harbor", "label:site", "x y"),
    ("cedar", "sender", "x@*"),
]


def _demo(db, with_rules: bool) -> None:
    """The demo, loaded once for every example (read only below), with the mapping rules above if asked."""
    with db.reader() as s:
        loaded = s.scalar(select(func.count()).select_from(Client))
    if loaded:
        return
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    if with_rules:
        with db.unit_of_work() as s:
            ids = dict(s.execute(select(Client.key, Client.id)).all())
            s.add_all(MappingRule(client_id=ids[key], field=f, pattern=p) for key, f, p in MAPPING)


_HINTS = {
    "hint": st.none() | st.sampled_from(NAMES),
    "host": st.none() | st.sampled_from(HOSTS),
    "sender": st.none() | st.sampled_from(SENDERS),
    "labels": st.dictionaries(st.sampled_from(["client", "tenant", "site"]), st.sampled_from(NAMES), max_size=2),
}


def _placed_as_the_rules_say(db, hint, host, sender, labels) -> None:
    signal = Signal(
        source="event", kind="alert", status="firing", title="Disk low", severity="warning", service="monitoring",
        fingerprint="disk", client_hint=hint, hostname=host, sender=sender, labels=labels,
    )  # fmt: skip
    with db.reader() as s:
        index = MatchIndex(s, [signal])
        expected = triage.match_client(signal.hints(), index.mapping + index.candidates(signal))
        assert index.client_of(signal, None) == expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(**_HINTS)
def test_the_client_an_event_names_is_the_one_the_matching_rules_find(db, hint, host, sender, labels):
    _demo(db, with_rules=False)
    _placed_as_the_rules_say(db, hint, host, sender, labels)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(**_HINTS)
# an event naming one client that a rule of each kind places elsewhere: by its site, its host, its sender
@example(hint="acme", host=None, sender=None, labels={"site": "x y"})
@example(hint="acme", host="acme-srv01-new", sender=None, labels={})
@example(hint="acme", host=None, sender="x@unknown.example", labels={})
def test_with_mapping_rules_an_event_is_placed_as_the_matching_rules_say(db, hint, host, sender, labels):
    _demo(db, with_rules=True)
    _placed_as_the_rules_say(db, hint, host, sender, labels)


def test_a_mapping_rule_outranks_the_client_an_event_names(db):
    _demo(db, with_rules=True)
    signal = Signal(
        source="event", kind="alert", status="firing", title="Disk low", severity="warning", service="monitoring",
        fingerprint="disk", client_hint="acme", hostname="ACME-SRV01",
    )  # fmt: skip
    with db.reader() as s:
        assert MatchIndex(s, [signal]).client_of(signal, None) == "harbor"


# a storm's alerts, each as Alertmanager sends it: the client label is also the hint, and labels no rule looks at
# (instance, mountpoint) differ from alert to alert
_STORM = st.lists(
    st.fixed_dictionaries({
        "client": st.sampled_from(NAMES),
        "host": st.none() | st.sampled_from(HOSTS),
        "labels": st.dictionaries(st.sampled_from(["tenant", "site", "instance", "mountpoint"]),
                                  st.sampled_from(NAMES), max_size=3),
    }),
    min_size=2,
    max_size=8,
)  # fmt: skip


def _each_placed_as_the_rules_say(db, alerts) -> None:
    """Within one batch, alerts whose hints differ only in labels are still each placed by their own: what the
    batch remembers of one alert's placing is never the answer for another that a rule would place elsewhere."""
    signals = [
        Signal(
            source="alertmanager", kind="alert", status="firing", title="Disk low", severity="warning",
            service="monitoring", fingerprint=f"disk-{n}", client_hint=a["client"], hostname=a["host"],
            labels={"client": a["client"], **a["labels"]},
        )
        for n, a in enumerate(alerts)
    ]  # fmt: skip
    with db.reader() as s:
        index = MatchIndex(s, signals)
        for signal in signals:
            expected = triage.match_client(signal.hints(), index.mapping + index.candidates(signal))
            assert index.client_of(signal, None) == expected


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(alerts=_STORM)
def test_each_alert_of_a_batch_is_placed_as_the_matching_rules_say(db, alerts):
    _demo(db, with_rules=False)
    _each_placed_as_the_rules_say(db, alerts)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(alerts=_STORM)
# the same client twice, once with the site a rule places elsewhere
@example(alerts=[{"client": "acme", "host": None, "labels": {"instance": "a"}},
                 {"client": "acme", "host": None, "labels": {"instance": "b", "site": "x y"}}])
def test_with_mapping_rules_each_alert_of_a_batch_is_placed_as_the_rules_say(db, alerts):
    _demo(db, with_rules=True)
    _each_placed_as_the_rules_say(db, alerts)


def test_an_alertmanager_alert_naming_its_client_takes_the_shortcut(db, monkeypatch):
    """Alertmanager's `client` label is also the alert's hint: named twice, it is still one candidate, so an MSP
    without a rule for the alert's fields places it without weighing the tiers (a storm's every alert did)."""
    _demo(db, with_rules=False)

    def weighed(*_args, **_kwargs):
        raise AssertionError("the tiers were weighed for an alert that names its client")

    monkeypatch.setattr(triage.CompiledRules, "find", weighed)
    signals = [
        Signal(
            source="alertmanager", kind="alert", status="firing", title="Disk low", severity="warning",
            service="monitoring", fingerprint=f"disk-{n}", client_hint="acme",
            labels={"client": "acme", "instance": f"node-{n}:9100", "mountpoint": "/data"},
        )
        for n in range(3)
    ]  # fmt: skip
    with db.reader() as s:
        index = MatchIndex(s, signals)
        assert [index.client_of(signal, None) for signal in signals] == ["acme"] * 3

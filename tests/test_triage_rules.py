"""Triage rules: fingerprints, DOMAIN.md's decision table, client matching, unpaid-work minutes."""

from __future__ import annotations

import random
from fnmatch import fnmatchcase

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.triage.rules import (
    _TIERS,
    DECISIONS,
    CompiledRules,
    Coverage,
    Decision,
    MatchRule,
    _HintView,
    _score,
    covered_services,
    decide,
    find_match,
    fingerprint,
    match_client,
    unpaid_minutes,
    valid_rule_field,
)
from tenure.vocabulary import SERVICES

MANAGED = frozenset({"monitoring", "backup_monitoring", "patching", "antivirus", "maintenance",
                     "remote_support", "onsite", "incident"})
ACME = Coverage(False, MANAGED, covering_agreement="acme-managed", covering_kind="managed",
                client_name="Acme")
WATCH = Coverage(False, frozenset({"monitoring", "patching"}), client_name="Beta")


# ------------------------------------------------------------------------------------- fingerprint


def test_fingerprint_shape_and_native_fingerprints() -> None:
    fp = fingerprint("event", "uptime-kuma", "monitor-17")
    assert fp.startswith("event:") and len(fp) == len("event:") + 16
    assert int(fp.split(":")[1], 16) >= 0
    assert fingerprint("alertmanager", "1a30ba71cca2921f") == "alertmanager:1a30ba71cca2921f"
    assert fingerprint("event", "a", "bc") != fingerprint("event", "ab", "c")
    assert fingerprint("event", None) == fingerprint("event", "")
    assert fingerprint("event", "x") != fingerprint("tactical", "x")
    with pytest.raises(ValueError):
        fingerprint("")


def test_fingerprints_are_the_same_in_every_process_and_release() -> None:
    # pinned as literals: open alerts are deduplicated against fingerprints stored by earlier processes and
    # releases, so a hash that changed per process (Python's own `hash`) or per release would reopen them
    assert fingerprint("event", "uptime-kuma", "monitor-17") == "event:5a3c88981c324413"
    assert fingerprint("email", "veeam", "DC01 nightly", "acme-dc01") == "email:10593efbc004802b"
    assert fingerprint("event", "a", "bc") == "event:3c88f1f4ea5d81a2"
    assert fingerprint("tactical", "agent-1", "check-9") == "tactical:bb11ab38bc669cfe"
    assert fingerprint("event", None) == "event:3688fc8411829e01"
    # a lone surrogate (raw 8-bit bytes in a mail header) hashes instead of failing
    assert fingerprint("email", "a\udc80b") == "email:545515cc08a6f444"


_part = st.one_of(st.none(), st.text(max_size=20), st.integers())


@settings(max_examples=150)
@given(st.sampled_from(["alertmanager", "event", "tactical", "restic", "ping"]), st.lists(_part, max_size=5))
def test_fingerprint_is_stable_and_short(source: str, parts: list[object]) -> None:
    fp = fingerprint(source, *parts)
    assert fp == fingerprint(source, *list(parts))
    assert fp.startswith(source + ":")
    assert len(fp) <= len(source) + 1 + 64


@settings(max_examples=150)
@given(st.lists(st.text(max_size=8), min_size=1, max_size=4), st.lists(st.text(max_size=8), min_size=1, max_size=4))
def test_fingerprint_tells_different_parts_apart(a: list[str], b: list[str]) -> None:
    if a != b:  # (texts this short never spell a 16-digit digest)
        assert fingerprint("event", *a) != fingerprint("event", *b)


# ------------------------------------------------------------------------------------- the table


@pytest.mark.parametrize(("service", "kind", "coverage", "job_known", "job_status", "expected", "reason"), [
    # ticket: an active agreement covers the service
    ("patching", "alert", ACME, True, None, "ticket", "Acme's managed agreement acme-managed covers patching."),
    ("backup_monitoring", "backup", ACME, True, "active", "ticket",
     "Acme's managed agreement acme-managed covers backup_monitoring."),
    ("monitoring", "alert", WATCH, True, None, "ticket", "An active agreement of Beta covers monitoring."),
    # a backup result needs backup_monitoring, whatever service the caller passed
    ("monitoring", "backup", WATCH, True, "active", "suppress", "No active agreement of Beta covers "
                                                                "backup_monitoring: recorded"),
    # quote: not covered, billable alerts
    ("antivirus", "alert", Coverage(False, frozenset({"monitoring"}), billable_alerts=True,
                                    client_name="Beta"), True, None, "quote",
     "No active agreement of Beta covers antivirus; Beta opted in to billable alerts"),
    # quote wins over forward when the client asked for both
    ("antivirus", "alert", Coverage(False, billable_alerts=True, forward_alerts=True), True, None, "quote",
     "No active agreement of the client covers antivirus"),
    # forward: not covered, the client receives its own alerts
    ("monitoring", "alert", Coverage(False, forward_alerts=True, client_name="Gamma"), True, None, "forward",
     "Gamma asked to receive its own alerts"),
    # suppress: not covered
    ("monitoring", "alert", Coverage(False, client_name="Delta"), True, None, "suppress",
     "No active agreement of Delta covers monitoring: recorded, no ticket and no tech time."),
    ("malware_cleanup", "alert", ACME, True, None, "suppress", "No active agreement of Acme covers malware_cleanup"),
    # orphaned: a former client, whatever it had
    ("patching", "alert", Coverage(True, MANAGED, billable_alerts=True, client_name="Epsilon"), True, None,
     "orphaned", "Epsilon is a former client"),
    ("backup_monitoring", "backup", Coverage(True, client_name="Epsilon"), False, None, "orphaned",
     "Epsilon is a former client"),
    # pending: a backup job never seen before, client without backup_monitoring
    ("backup_monitoring", "backup", WATCH, False, None, "pending", "The backup job is never seen before"),
    ("backup_monitoring", "backup", Coverage(False, billable_alerts=True), True, "pending", "pending",
     "still pending"),
    # a new job of a covered client activates itself and is ticketed
    ("backup_monitoring", "backup", ACME, False, None, "ticket", "The new backup job activates itself."),
    # a paused or retired job's results are recorded only
    ("backup_monitoring", "backup", ACME, True, "paused", "suppress", "The backup job is paused"),
    # quarantine: no client matched
    ("monitoring", "alert", None, True, None, "quarantine", "No client matched this alert"),
    ("backup_monitoring", "backup", None, False, None, "quarantine", "No client matched this alert"),
])
def test_decision_table(service: str, kind: str, coverage: Coverage | None, job_known: bool,
                        job_status: str | None, expected: str, reason: str) -> None:
    decision = decide(service, kind, coverage, job_known=job_known, job_status=job_status)
    assert decision.decision == expected
    assert reason in decision.reason
    assert decision.activate_job == ("activates itself" in reason)


def test_alerts_ignore_the_job_arguments() -> None:
    assert decide("patching", "alert", WATCH, job_known=False, job_status=None).decision == "ticket"


def test_decide_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="kind 'metric'"):
        decide("monitoring", "metric", ACME, job_known=True, job_status=None)


def test_coverage_takes_any_iterable_of_services() -> None:
    assert Coverage(False, {"monitoring"}).covered_services == frozenset({"monitoring"})  # type: ignore[arg-type]


def test_covered_services_is_covers_minus_excludes_per_agreement() -> None:
    assert covered_services([(["monitoring", "malware_cleanup"], ["malware_cleanup"]),
                             (["malware_cleanup"], [])]) == frozenset({"monitoring", "malware_cleanup"})
    assert covered_services([]) == frozenset()


_coverage = st.builds(
    Coverage,
    former=st.booleans(),
    covered_services=st.frozensets(st.sampled_from(SERVICES)),
    billable_alerts=st.booleans(),
    forward_alerts=st.booleans(),
    covering_agreement=st.one_of(st.none(), st.text(max_size=10)),
    covering_kind=st.one_of(st.none(), st.sampled_from(["managed", "monitoring"])),
    client_name=st.one_of(st.none(), st.text(max_size=10)),
)
_service = st.one_of(st.sampled_from(SERVICES), st.text(max_size=12))
_job_status = st.sampled_from([None, "active", "pending", "paused", "retired"])


@settings(max_examples=150)
@given(_service, st.sampled_from(["alert", "backup"]), st.one_of(st.none(), _coverage), st.booleans(), _job_status)
def test_decide_is_total(service: str, kind: str, coverage: Coverage | None, job_known: bool,
                         job_status: str | None) -> None:
    decision = decide(service, kind, coverage, job_known=job_known, job_status=job_status)
    assert decision.decision in DECISIONS
    assert decision.reason.strip()
    assert (decision.decision == "quarantine") == (coverage is None)
    if decision.decision == "ticket":
        assert coverage is not None
        assert (service if kind == "alert" else "backup_monitoring") in coverage.covered_services
    if decision.decision == "pending":
        assert kind == "backup"
    if decision.activate_job:
        assert decision.decision == "ticket" and kind == "backup"


@settings(max_examples=150)
@given(_service, st.sampled_from(["alert", "backup"]), _coverage, st.booleans(), _job_status)
def test_a_former_client_is_always_orphaned(service: str, kind: str, coverage: Coverage, job_known: bool,
                                            job_status: str | None) -> None:
    former = Coverage(True, coverage.covered_services, coverage.billable_alerts, coverage.forward_alerts,
                      coverage.covering_agreement, coverage.covering_kind, coverage.client_name)
    assert decide(service, kind, former, job_known=job_known, job_status=job_status).decision == "orphaned"


# ------------------------------------------------------------------------------------------ matching

RULES: list[tuple[str, str, str]] = [
    ("acme", "intake", "acme"),
    ("acme", "domain", "acmedental.example"),
    ("acme", "device", "ACME-DC01"),
    ("acme", "client", "Acme Dental"),
    ("acme", "client", "acme"),
    ("beta", "intake", "beta"),
    ("beta", "domain", "beta-law.example"),
    ("beta", "device", "BETA-WS02"),
    ("beta", "sender", "*@backup-portal.vendor.example"),
    ("beta", "subject", "*(beta)*"),
    ("gamma", "label:tenant_id", "T-00*"),
    ("gamma", "sender_domain", "*.gamma.example"),
    ("gamma", "hostname", "gm-*"),
    ("delta", "domain", "mail.acmedental.example"),
]


@pytest.mark.parametrize(("hints", "client"), [
    # the per-client intake address
    ({"recipient": "alerts+beta@example-it.example", "sender": "veeam@acmedental.example"}, "beta"),
    ({"recipient": ["Alerts <alerts+ACME@example-it.example>"]}, "acme"),
    # explicit mapping rules
    ({"sender": "Portal <noreply@backup-portal.vendor.example>"}, "beta"),
    ({"sender": "noreply@srv.gamma.example"}, "gamma"),
    ({"subject": "Backup job (BETA) failed"}, "beta"),
    ({"labels": {"tenant_id": "T-0042"}}, "gamma"),
    ({"hostname": "GM-FS01"}, "gamma"),
    # explicit rules outrank the device hostname
    ({"hostname": "acme-dc01", "subject": "nightly (beta)"}, "beta"),
    # device hostname, case-insensitive, or its short name
    ({"hostname": "acme-dc01"}, "acme"),
    ({"hostname": "acme-dc01.acme.lan", "client_hint": "beta"}, "acme"),
    # the client label
    ({"client_hint": "ACME  dental"}, "acme"),
    ({"client_hint": "acme", "sender": "x@beta-law.example"}, "acme"),
    # sender domain or subdomain; the most specific domain wins
    ({"sender": "veeam@acmedental.example"}, "acme"),
    ({"sender": "veeam@nas.acmedental.example"}, "acme"),
    ({"sender": "veeam@mail.acmedental.example"}, "delta"),
    # nothing
    ({"sender": "someone@elsewhere.example", "hostname": "unknown"}, None),
    ({}, None),
    ({"recipient": "alerts@example-it.example"}, None),
    ({"sender": "x@notacmedental.example"}, None),
])
def test_match_client(hints: dict[str, object], client: str | None) -> None:
    assert match_client(hints, RULES) == client


def test_find_match_says_which_rule() -> None:
    found = find_match({"hostname": "ACME-DC01", "sender": "x@beta-law.example"}, RULES)
    assert found is not None
    assert (found.client, found.field, found.pattern, found.tier) == ("acme", "device", "ACME-DC01", "hostname")


def test_ambiguous_step_falls_through() -> None:
    rules = [("acme", "device", "DC01"), ("beta", "device", "dc01"), ("beta", "domain", "beta-law.example")]
    assert match_client({"hostname": "DC01"}, rules) is None
    assert match_client({"hostname": "DC01", "sender": "x@beta-law.example"}, rules) == "beta"


def test_exact_pattern_beats_a_glob() -> None:
    rules = [("acme", "hostname", "srv-*"), ("beta", "hostname", "srv-01")]
    assert match_client({"hostname": "srv-01"}, rules) == "beta"
    assert match_client({"hostname": "srv-02"}, rules) == "acme"


def test_intake_rule_may_be_a_whole_address() -> None:
    assert match_client({"recipient": "Acme-Alerts@Example-IT.example"},
                        [("acme", "intake", "acme-alerts@example-it.example")]) == "acme"


def test_rule_fields_are_checked() -> None:
    assert valid_rule_field("label:site") and valid_rule_field("sender_domain") and not valid_rule_field("label:")
    with pytest.raises(ValueError, match="field 'senderr'"):
        match_client({}, [("acme", "senderr", "x")])


@settings(max_examples=100)
@given(st.randoms(use_true_random=False), st.fixed_dictionaries({}, optional={
    "recipient": st.sampled_from(["alerts+beta@example-it.example", "alerts@example-it.example"]),
    "sender": st.sampled_from(["veeam@acmedental.example", "noreply@srv.gamma.example",
                               "a@mail.acmedental.example", "a@backup-portal.vendor.example"]),
    "hostname": st.sampled_from(["ACME-DC01", "beta-ws02.beta.lan", "gm-fs01", "other"]),
    "client_hint": st.sampled_from(["acme", "Acme Dental", "beta"]),
    "subject": st.sampled_from(["(beta) nightly", "nightly"]),
    "labels": st.sampled_from([{}, {"tenant_id": "T-001"}]),
}))
def test_matching_does_not_depend_on_rule_order(rng: random.Random, hints: dict[str, object]) -> None:
    shuffled = list(RULES)
    rng.shuffle(shuffled)
    assert match_client(hints, shuffled) == match_client(hints, RULES)
    assert match_client(hints, [MatchRule(*rule) for rule in RULES]) == match_client(hints, RULES)



def _every_rule_weighed(hints: dict[str, object], rules: list[tuple[str, str, str]]) -> str | None:
    """The matching rule read plainly, as a reference: every rule scored in every tier, a mapping rule's
    glob with fnmatch on the value it names."""
    view = _HintView.of(hints)
    values = {"sender": view.sender, "sender_domain": view.sender_domain, "hostname": view.hostname,
              "subject": view.subject}
    for tier in _TIERS:
        scored = []
        for rule in map(MatchRule._make, rules):
            if tier != "mapping":
                score = _score(tier, rule, view)
            else:
                label = rule.field.startswith("label:")
                value = view.labels.get(rule.field[6:].strip()) if label else values.get(rule.field)
                pattern = rule.pattern.strip().lower()
                score = None
                if value is not None and fnmatchcase(value.lower(), pattern):
                    literal = not any(ch in pattern for ch in "*?[")
                    score = (1 if literal else 0, len(pattern.replace("*", "").replace("?", "")))
            if score is not None:
                scored.append((score, rule))
        if scored:
            best = max(score for score, _ in scored)
            clients = {rule.client for score, rule in scored if score == best}
            if len(clients) == 1:
                return clients.pop()
    return None


_VALUES = ["acme-dc01", "ACME-DC01.lan", "gm-fs01", "srv-01", "x@vendor.example", "ops@mail.gamma.example",
           "Backup (beta) failed", "nightly", "T-0042", "a]b", "a[b", "", "zz"]
_GLOBS = ["acme-*", "*.lan", "*-dc01*", "gm-?s01", "srv-0[12]", "*@vendor.example", "*(beta)*", "t-00*",
          "*", "a]*", "a[b", "[!a]*", "*-0[12]", "[as]cme-dc01", "*gamma*", "ACME-DC01", "srv-01", "nightly",
          "x*z", "?"]
_RULE = st.tuples(
    st.sampled_from(["acme", "beta", "gamma"]),
    st.sampled_from(["sender", "sender_domain", "hostname", "subject", "label:site", "label: site", "label:tenant"]),
    st.sampled_from(_GLOBS) | st.text(alphabet="ab*?[]-.", min_size=1, max_size=6),
)


@settings(max_examples=400)
@given(st.lists(_RULE, max_size=12), st.fixed_dictionaries({}, optional={
    "sender": st.sampled_from(["x@vendor.example", "Ops <ops@mail.gamma.example>", "a]b@x", "nobody"]),
    "hostname": st.sampled_from(_VALUES),
    "subject": st.sampled_from(_VALUES),
    "client_hint": st.sampled_from(["acme", "beta"]),
    "labels": st.dictionaries(st.sampled_from(["site", "tenant", " site"]), st.sampled_from(_VALUES), max_size=2),
}), st.lists(st.sampled_from(RULES), max_size=4))
def test_rules_made_ready_place_a_payload_as_weighing_every_rule_does(
    mapping: list[tuple[str, str, str]], hints: dict[str, object], derived: list[tuple[str, str, str]]
) -> None:
    """Intake files the MSP's mapping rules by field and by the letters a glob must begin or end with
    (`CompiledRules`): whatever the rules and the payload, it places the payload as weighing every rule does,
    the payload's own candidates weighed beside them."""
    expected = _every_rule_weighed(hints, mapping + derived)
    assert CompiledRules(mapping).find(hints, derived) == find_match(hints, mapping + derived)
    found = find_match(hints, mapping + derived)
    assert (found.client if found else None) == expected



def test_every_glob_filed_by_its_letters_matches_what_fnmatch_matches() -> None:
    for glob in [*_GLOBS, "[as]cme-*", "a*b*c", "??-dc01", "x[", "*]", "*dc01*", "*tly*", "*a?c*", "*ab*"]:
        for value in [*_VALUES, "srv-02", "scme-dc01", "abc", "aXbYc", "ab-dc01", "x[", "a]"]:
            hints = {"subject": value, "labels": {"site": value}}
            for field in ("subject", "label:site"):
                rules = [("acme", field, glob)]
                assert match_client(hints, rules) == _every_rule_weighed(hints, rules), (glob, value, field)

def test_a_thousand_mapping_rules_are_filed_not_each_tried() -> None:
    """An MSP with many glob rules: a payload tries only the globs its own values could match."""
    rules = [(f"c{i}", "hostname", f"site{i:04d}-*") for i in range(1000)] + [("acme", "hostname", "*-dc01")]
    compiled = CompiledRules(rules)
    value = "site0042-fs01"
    tried = [rule for (_, where, letters), globs in compiled.globs.items() for _, _, rule in globs
             if (where, letters) in (("^", value[: len(letters)]), ("$", value[-len(letters):]), ("", ""))]
    assert [rule.client for rule in tried] == ["c42"]
    assert compiled.find({"hostname": "SITE0042-fs01"}) == find_match({"hostname": "SITE0042-fs01"}, rules)
    assert match_client({"hostname": "site0042-fs01"}, rules) == "c42"
    assert match_client({"hostname": "x-dc01"}, rules) == "acme"

# ---------------------------------------------------------------------------------------- unpaid work


def test_unpaid_minutes_default_model() -> None:
    decisions = ["ticket", "quote", "forward", "suppress", "suppress", "suppress", "orphaned", "pending",
                 Decision("quote", "…")]
    result = unpaid_minutes(decisions)
    assert result.per_alert == 45
    # the two quotes reached a technician; the forward went to the client's own contact: no tech time
    assert (result.reached, result.minutes) == (2, 90)
    assert (result.suppressed, result.minutes_avoided) == (3, 135)


def test_a_forwarded_alert_costs_no_technician_time() -> None:
    """Seed 004: forwarding an uncovered alert to the client's own contact costs the MSP nothing."""
    assert unpaid_minutes(["forward"]).minutes == 0
    assert unpaid_minutes(["forward", "forward", "quote"]).minutes == 45


def test_unpaid_minutes_custom_model_and_errors() -> None:
    result = unpaid_minutes(["quote", "suppress"], {"reach_decision_maker": 5, "win_approval": 0})
    assert (result.minutes, result.minutes_avoided) == (5, 5)
    assert unpaid_minutes([]).minutes == 0
    with pytest.raises(ValueError, match="decision 'ignore'"):
        unpaid_minutes(["ignore"])
    with pytest.raises(ValueError, match="win_approval"):
        unpaid_minutes(["quote"], {"win_approval": -1})

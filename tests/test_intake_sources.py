"""Parsers of the non-email intake sources: Alertmanager, the generic event, Tactical RMM, restic, pings."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.intake.sources import (
    IntakeError,
    Signal,
    infer_service,
    normalise_severity,
    parse_alertmanager,
    parse_event,
    parse_ping,
    parse_restic,
    parse_tactical,
    parse_time,
    restic_status,
)
from tenure.triage.rules import match_client

DATA = Path(__file__).parent / "data" / "intake"
CDT = timezone(timedelta(hours=-5))


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ------------------------------------------------------------------------------------ alertmanager


def test_alertmanager_gives_one_signal_per_alert() -> None:
    signals = parse_alertmanager(raw("alertmanager_v4.json"))
    assert [(s.status, s.service, s.severity) for s in signals] == [
        ("firing", "monitoring", "critical"),
        ("firing", "patching", "warning"),
        ("resolved", "antivirus", "warning"),
    ]
    assert all(s.source == "alertmanager" and s.kind == "alert" for s in signals)
    assert [s.fingerprint for s in signals] == [
        "alertmanager:1a30ba71cca2921f", "alertmanager:c6eadffa33fcdf37", "alertmanager:bc97ff14869b13e3",
    ]


def test_alertmanager_hints_times_and_details() -> None:
    disk, updates, defender = parse_alertmanager(load("alertmanager_v4.json"))
    assert disk.client_hint == "acme"
    assert disk.hostname == "acme-dc01.acme.lan"  # instance without its port
    assert defender.hostname == "ACME-DC01"  # an explicit hostname label wins over instance
    assert disk.title == "HostDiskSpaceLow: Disk C: on acme-dc01 is 94% full"
    assert disk.occurred_at == datetime(2026, 10, 3, 21, 58, 12, 739266, tzinfo=CDT)
    assert updates.occurred_at == datetime(2026, 10, 3, 8, 0, tzinfo=UTC)
    assert defender.occurred_at == datetime(2026, 10, 3, 22, 5, tzinfo=UTC)  # resolved: when it ended
    assert disk.labels["volume"] == "C:"
    assert disk.details["receiver"] == "tenure"
    assert disk.details["annotations"]["description"].startswith("Only 5.8 GiB")
    assert disk.job is None


def test_alertmanager_service_label_wins_when_it_is_a_service() -> None:
    payload = load("alertmanager_v4.json")
    payload["alerts"][0]["labels"]["service"] = "backup_monitoring"
    payload["alerts"][1]["labels"]["service"] = "web"  # not one of DOMAIN.md's: read from the alert name
    first, second, _ = parse_alertmanager(payload)
    assert first.service == "backup_monitoring"
    assert second.service == "patching"


def test_alertmanager_without_fingerprint_hashes_the_labels() -> None:
    payload = load("alertmanager_v4.json")
    del payload["alerts"][0]["fingerprint"]
    again = json.loads(json.dumps(payload))
    again["alerts"][0]["labels"] = dict(reversed(list(again["alerts"][0]["labels"].items())))
    fp = parse_alertmanager(payload)[0].fingerprint
    assert fp.startswith("alertmanager:") and len(fp) == len("alertmanager:") + 16
    assert parse_alertmanager(again)[0].fingerprint == fp


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: p.pop("version"), "alertmanager.version: missing"),
    (lambda p: p.update(version="3"), "alertmanager.version: '3' is not supported"),
    (lambda p: p.pop("alerts"), "alertmanager.alerts: missing"),
    (lambda p: p["alerts"][1].update(status="pending"), "alertmanager.alerts[1].status: 'pending'"),
    (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alertmanager.alerts[0].startsAt: 'yesterday'"),
    (lambda p: p["alerts"][2].update(labels=["x"]), "alertmanager.alerts[2].labels: expected an object"),
])
def test_alertmanager_errors_name_the_place(mutate: Any, message: str) -> None:
    payload = load("alertmanager_v4.json")
    mutate(payload)
    with pytest.raises(IntakeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_alertmanager(payload)


@pytest.mark.parametrize("body", [b"", b"{not json", b"\xff\xfe", b"[]"])
def test_alertmanager_rejects_what_is_not_a_webhook(body: bytes) -> None:
    with pytest.raises(IntakeError, match="alertmanager"):
        parse_alertmanager(body)


# ------------------------------------------------------------------------------------------- event


def test_event_fixture() -> None:
    [signal] = parse_event(raw("event.json"))
    assert signal == Signal(
        source="event", kind="alert", status="firing", title="Patient portal is down (HTTP 502)",
        severity="critical", service="monitoring", fingerprint=signal.fingerprint,
        occurred_at=datetime(2026, 10, 3, 22, 15, tzinfo=CDT), client_hint="acme",
        hostname="portal.acmedental.example", labels={"monitor": "Patient portal",
                                                      "url": "https://portal.acmedental.example/"},
        details={"origin": "uptime-kuma", "fingerprint": "monitor-17"},
    )
    resolved = parse_event({**load("event.json"), "status": "resolved", "title": "Patient portal is up"})[0]
    assert resolved.fingerprint == signal.fingerprint  # the sender's fingerprint ties them


def test_event_minimal_and_batch() -> None:
    signals = parse_event([
        {"source": "script", "title": "Windows Update failed on BETA-WS02", "status": "firing"},
        {"source": "script", "title": "Windows Update failed on BETA-WS02", "status": "resolved", "time": 1791100800},
    ])
    assert [s.status for s in signals] == ["firing", "resolved"]
    assert signals[0].service == "patching" and signals[0].severity == "warning"
    assert signals[0].fingerprint == signals[1].fingerprint  # made from source, client, host, service, title
    assert signals[0].occurred_at is None
    assert signals[1].occurred_at == datetime.fromtimestamp(1791100800, UTC)


@pytest.mark.parametrize(("event", "message"), [
    ({"title": "x", "status": "firing"}, r"event.source: missing"),
    ({"source": "s", "status": "firing"}, r"event.title: missing"),
    ({"source": "s", "title": "x", "status": "ok"}, r"event.status: 'ok' is not firing or resolved"),
    ({"source": "s", "title": "x", "status": "firing", "service": "backups"}, r"event.service: 'backups'"),
    ({"source": "s", "title": "x", "status": "firing", "severity": "spicy"}, r"event.severity: 'spicy'"),
    ({"source": "s", "title": "x", "status": "firing", "time": "2026-10-03T22:15:00"}, r"has no time zone"),
    ({"source": "s", "title": "x", "status": "firing", "labels": "a=b"}, r"event.labels: expected an object"),
])
def test_event_errors_name_the_field(event: dict[str, Any], message: str) -> None:
    with pytest.raises(IntakeError, match=message):
        parse_event(event)


def test_event_batch_error_names_the_index() -> None:
    with pytest.raises(IntakeError, match=r"event\[1\]\.title: missing"):
        parse_event([{"source": "s", "title": "x", "status": "firing"}, {"source": "s", "status": "firing"}])


# ---------------------------------------------------------------------------------------- tactical


def test_tactical_recommended_body() -> None:
    [signal] = parse_tactical(raw("tactical_failure.json"))
    assert signal.source == "tactical" and signal.kind == "alert" and signal.status == "firing"
    assert signal.title == "ACME-DC01 has a Script check: Veeam backup job status that failed."
    assert signal.severity == "error"
    assert signal.service == "backup_monitoring"
    assert signal.hostname == "ACME-DC01" and signal.client_hint == "Acme Dental"
    assert signal.labels == {"site": "Main office", "alert_type": "check", "client": "Acme Dental"}
    assert signal.occurred_at == datetime(2026, 10, 3, 22, 15, 42, 187311, tzinfo=UTC)
    assert signal.details["agent_id"] == "kYtGsBqPzXwMvRnLcJhDfEaS"


def test_tactical_resolved_action_closes_the_same_alert() -> None:
    [failure] = parse_tactical(load("tactical_failure.json"))
    [resolved] = parse_tactical(load("tactical_resolved.json"))
    assert resolved.status == "resolved"
    assert resolved.fingerprint == failure.fingerprint
    assert resolved.occurred_at == datetime(2026, 10, 4, 6, 2, 10, 4417, tzinfo=UTC)
    # the resolved flag alone is enough too
    body = {**load("tactical_failure.json"), "resolved": "True"}
    del body["event"]
    assert parse_tactical(body)[0].status == "resolved"


def test_tactical_is_lenient_on_missing_and_unfilled_fields() -> None:
    [signal] = parse_tactical(load("tactical_sparse.json"))
    assert signal.hostname == "BETA-WS02"
    assert signal.client_hint is None  # "{{client.name}}" was left unfilled
    assert signal.occurred_at is None
    assert signal.service == "patching"
    assert signal.severity == "warning" and signal.status == "firing"
    same = parse_tactical({"hostname": "beta-ws02", "message": "BETA-WS02 has a Windows Update check that failed."})
    assert same[0].fingerprint == signal.fingerprint  # no alert id: hostname (any case), type and message


def test_tactical_agent_overdue() -> None:
    [signal] = parse_tactical({"alert_type": "availability", "hostname": "ACME-WS03", "client": "Acme Dental"})
    assert signal.title == "ACME-WS03 is overdue"
    assert signal.severity == "error" and signal.service == "monitoring"


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"client": "Acme"}', b'{"message": "{{alert.message}}"}'])
def test_tactical_rejects_bodies_that_say_nothing(body: bytes) -> None:
    with pytest.raises(IntakeError, match="tactical"):
        parse_tactical(body)


# ------------------------------------------------------------------------------------------ restic


def test_restic_success() -> None:
    [signal] = parse_restic(raw("restic_success.jsonl"), exit_code=0, job="acme-files", hostname="ACME-FS01")
    assert (signal.source, signal.kind, signal.status, signal.service) == ("restic", "backup", "success",
                                                                           "backup_monitoring")
    assert signal.severity == "info"
    assert signal.title == "restic backup acme-files: success"
    assert signal.job == "acme-files" and signal.hostname == "ACME-FS01"
    assert signal.occurred_at == datetime(2026, 10, 3, 22, 0, 6, 894206, tzinfo=CDT)
    assert signal.details["files_new"] == 212
    assert signal.details["data_added"] == 734003200
    assert signal.details["size_bytes"] == 9663676416
    assert signal.details["snapshot_id"].startswith("6f1d0f4a")
    assert signal.details["errors"] == []


def test_restic_warning_from_exit_code_3_or_from_the_errors() -> None:
    [with_code] = parse_restic(raw("restic_warning.jsonl"), exit_code=3, job="acme-files")
    [inferred] = parse_restic(raw("restic_warning.jsonl"), job="acme-files")
    for signal in (with_code, inferred):
        assert signal.status == "warning" and signal.severity == "warning"
        assert signal.details["error_count"] == 2
        assert signal.details["errors"][0] == (
            "open /srv/data/dental/practice.mdb: permission denied (archival /srv/data/dental/practice.mdb)")
        assert "permission denied" in signal.title
    assert with_code.fingerprint == inferred.fingerprint


def test_restic_failure() -> None:
    [signal] = parse_restic(raw("restic_error.jsonl"), job="acme-files")
    assert signal.status == "failure" and signal.severity == "error"
    assert signal.details["exit_code"] == 10
    assert signal.details["errors"][0].startswith("Fatal: repository does not exist")
    assert signal.occurred_at is None
    # a summary with a failing exit code is still a failure; no summary at all is one too
    assert parse_restic(raw("restic_success.jsonl"), exit_code=1)[0].status == "failure"
    [cut] = parse_restic(b'{"message_type":"status","percent_done":0.5}\nKilled\n')
    assert cut.status == "failure"
    assert cut.details["text"] == ["Killed"]


def test_restic_fingerprint_is_per_job() -> None:
    a = parse_restic(raw("restic_success.jsonl"), job="acme-files")[0].fingerprint
    b = parse_restic(raw("restic_error.jsonl"), job="acme-files")[0].fingerprint
    c = parse_restic(raw("restic_success.jsonl"), job="beta-files")[0].fingerprint
    assert a == b != c


@pytest.mark.parametrize(("code", "status"), [(0, "success"), (3, "warning"), (1, "failure"), (2, "failure"),
                                              (10, "failure"), (11, "failure"), (12, "failure"), (130, "failure"),
                                              (77, "failure")])
def test_restic_exit_codes(code: int, status: str) -> None:
    assert restic_status(code) == status


@pytest.mark.parametrize("output", [b"", b"Fatal: wrong password\n", b'{"percent_done": 1}\n'])
def test_restic_rejects_output_without_messages(output: bytes) -> None:
    with pytest.raises(IntakeError, match="restic"):
        parse_restic(output)


# -------------------------------------------------------------------------------------------- ping

UUID = "5f3c1e2a-9b8d-4c7e-a6f5-0e1d2c3b4a59"


@pytest.mark.parametrize(("path", "status", "code"), [
    (f"/ping/{UUID}", "success", None),
    (f"/ping/{UUID}/", "success", None),
    (f"/ping/{UUID}/start", "started", None),
    (f"/ping/{UUID}/fail", "failure", None),
    (f"/ping/{UUID}/0", "success", 0),
    (f"/ping/{UUID}/1", "failure", 1),
    (f"/ping/{UUID}/255", "failure", 255),
    (f"https://tenure.example-it.example/ping/{UUID.upper()}/start?rid=7", "started", None),
])
def test_ping(path: str, status: str, code: int | None) -> None:
    when = datetime(2026, 10, 3, 22, 0, tzinfo=UTC)
    [signal] = parse_ping(path, received_at=when)
    assert (signal.source, signal.kind, signal.status, signal.service) == ("ping", "backup", status,
                                                                           "backup_monitoring")
    assert signal.job == UUID
    assert signal.details["exit_code"] == code
    assert signal.occurred_at == when
    assert signal.fingerprint == parse_ping(f"/ping/{UUID}")[0].fingerprint  # one per job: success closes


def test_ping_keeps_the_log() -> None:
    [signal] = parse_ping(f"/ping/{UUID}/1", body=b"robocopy exited with 16\n")
    assert signal.details["log"] == "robocopy exited with 16\n"
    assert signal.title.endswith("failure (exit code 1)")


@pytest.mark.parametrize(("path", "message"), [
    ("/ping/not-a-uuid", "is not a UUID"),
    (f"/ping/{UUID}/256", "out of range"),
    (f"/ping/{UUID}/log", "'log' is not start, fail or an exit code"),
    (f"/pong/{UUID}", "is not /ping/<uuid>"),
    (f"/ping/{UUID}/start/extra", "is not /ping/<uuid>"),
])
def test_ping_errors(path: str, message: str) -> None:
    with pytest.raises(IntakeError, match=message):
        parse_ping(path)


# ----------------------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(("texts", "service"), [
    (("WindowsUpdatesPending",), "patching"),
    (("wsus_sync_failed",), "patching"),
    (("Patch Tuesday deployment failed",), "patching"),
    (("DefenderSignaturesOutdated",), "antivirus"),
    (("Threat detected by Bitdefender",), "antivirus"),
    (("ResticBackupStale",), "backup_monitoring"),
    (("Veeam job failed",), "backup_monitoring"),
    (("HostDiskSpaceLow",), "monitoring"),
    (("CPU load high", None), "monitoring"),
    ((), "monitoring"),
])
def test_infer_service(texts: tuple[str | None, ...], service: str) -> None:
    assert infer_service(*texts) == service


@pytest.mark.parametrize(("word", "severity"), [
    ("critical", "critical"), ("CRIT", "critical"), ("page", "critical"), ("error", "error"),
    ("warning", "warning"), ("info", "info"), ("informational", "info"), ("", "warning"), (None, "warning"),
    ("whatever", "warning"),
])
def test_normalise_severity(word: str | None, severity: str) -> None:
    assert normalise_severity(word) == severity


def test_parse_time() -> None:
    assert parse_time("0001-01-01T00:00:00Z", "t") is None  # Go's zero time
    assert parse_time("2026-10-03T22:00:00.123456789Z", "t") == datetime(2026, 10, 3, 22, 0, 0, 123456, tzinfo=UTC)
    assert parse_time("2026-10-03T22:00:00", "t", naive="none") is None
    with pytest.raises(IntakeError, match="t: '2026-10-03T22:00:00' has no time zone offset"):
        parse_time("2026-10-03T22:00:00", "t")


def test_signal_hints_feed_match_client() -> None:
    disk = parse_alertmanager(load("alertmanager_v4.json"))[0]
    tactical = parse_tactical(load("tactical_failure.json"))[0]
    rules = [("acme", "client", "acme"), ("acme", "client", "Acme Dental"), ("beta", "device", "BETA-WS02")]
    assert match_client(disk.hints(), rules) == "acme"
    assert match_client(tactical.hints(), rules) == "acme"
    sparse = parse_tactical(load("tactical_sparse.json"))[0]
    assert match_client(sparse.hints(), rules) == "beta"


# ------------------------------------------------------------------------------------- properties

_label = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=100)
@given(st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), _label, max_size=6),
       st.sampled_from(["firing", "resolved"]))
def test_alertmanager_any_labels_parse(labels: dict[str, str], status: str) -> None:
    payload = {"version": "4", "status": status, "alerts": [
        {"status": status, "labels": labels, "annotations": {}, "startsAt": "2026-10-03T08:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z"}]}
    [signal] = parse_alertmanager(json.dumps(payload))
    assert signal.status == status
    assert signal.severity in ("critical", "error", "warning", "info")
    assert signal.service in ("monitoring", "patching", "antivirus", "backup_monitoring") or \
        signal.service == labels.get("service")
    assert signal.fingerprint == parse_alertmanager(payload)[0].fingerprint


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_parsers_raise_only_intake_errors_on_junk(body: bytes) -> None:
    for parse in (parse_alertmanager, parse_event, parse_tactical, parse_restic):
        with contextlib.suppress(IntakeError):
            parse(body)

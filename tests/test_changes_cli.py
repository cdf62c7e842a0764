"""Changing things in place from the command line, as a person at a terminal and a script would."""

from __future__ import annotations

import json

NOW = ["--now", "2026-11-24T15:00:00Z"]


def test_a_client_is_signed_and_served_from_the_terminal(cli):
    cli("demo")
    added = cli("client", "add", "fern", "--name", "Fern Bakery", "--domain", "fern.example", "--json")
    made = json.loads(added.stdout)
    assert made["key"] == "fern" and made["domains"] == ["fern.example"]
    cli(*NOW, "agreement", "add", "fern", "fern-mon", "--kind", "monitoring", "--start", "2026-11-01",
        "--monthly-fee", "100", "--covers", "monitoring", "--covers", "patching")  # fmt: skip
    device = json.loads(cli("device", "add", "fern", "fern-lt1", "--hostname", "FERN-LT1", "--json").stdout)
    edited = json.loads(cli("device", "edit", "fern-lt1", "--os", "Windows 11", "--version", device["version"],
                            "--json").stdout)  # fmt: skip
    assert edited["os"] == "Windows 11"
    stale = cli("device", "edit", "fern-lt1", "--os", "Linux", "--version", device["version"], check=False)
    assert stale.returncode != 0 and "changed since" in stale.stderr and stale.stderr.count("\n") == 1
    contact = json.loads(cli("contact", "add", "fern", "--name", "Ana", "--email", "ana@fern.example",
                             "--role", "billing", "--json").stdout)  # fmt: skip
    cli("contact", "edit", "fern", str(contact["id"]), "--phone", "555-0100")
    listed = json.loads(cli("client", "list", "--json", *NOW).stdout)
    (fern,) = [c for c in listed["clients"] if c["key"] == "fern"]
    assert fern["class"] == "agreement"
    retired = json.loads(cli("device", "retire", "fern-lt1", "--json").stdout)
    assert retired["outcome"] == "retired"


def test_time_is_corrected_and_voided_and_a_refusal_names_its_field(cli):
    cli("demo")
    logged = json.loads(cli(*NOW, "time", "log", "acme", "--minutes", "50", "--type", "onsite", "--json").stdout)
    entry = str(logged["id"])
    moved = json.loads(cli(*NOW, "time", "edit", entry, "--client", "harbor", "--reason", "wrong client",
                           "--json").stdout)  # fmt: skip
    assert moved["client"] == "harbor"
    refused = cli(*NOW, "time", "edit", entry, "--minutes", "0", check=False)
    assert refused.returncode != 0 and "minutes" in refused.stderr
    voided = json.loads(cli(*NOW, "time", "void", entry, "--reason", "logged twice", "--json").stdout)
    assert voided["voided"] is True


def test_a_pending_job_is_activated_and_a_billed_agreement_ended(cli):
    cli("demo")
    cli("job", "pause", "acme-srv01-nightly")
    answered = json.loads(cli("job", "activate", "acme-srv01-nightly", "--json").stdout)
    assert answered["status"] == "active"
    cli(*NOW, "billing", "run", "--period", "2026-11")
    refused = cli(*NOW, "agreement", "edit", "acme-managed", "--monthly-fee", "1500", check=False)
    assert refused.returncode != 0 and "--from" in refused.stderr
    moved = json.loads(cli(*NOW, "agreement", "edit", "acme-managed", "--monthly-fee", "1500", "--from", "2026-12-01",
                           "--json").stdout)  # fmt: skip
    assert moved["start"] == "2026-12-01"
    ended = json.loads(cli(*NOW, "agreement", "end", "acme-managed", "--json").stdout)
    assert ended["outcome"] == "ended"


def test_who_changed_what_is_read_from_the_terminal(cli):
    cli("demo")
    cli("device", "add", "acme", "acme-lt9", "--hostname", "ACME-LT9")
    cli("device", "edit", "acme-lt9", "--os", "Windows 11")
    log = json.loads(cli("changes", "device", "acme-lt9", "--json").stdout)
    assert [c["action"] for c in log["changes"]] == ["update", "create"]  # newest first
    assert log["changes"][0]["changed"]["os"] == [None, "Windows 11"] and log["changes"][0]["actor"].startswith("cli:")
    table = cli("changes", "device", "acme-lt9").stdout
    assert "os: - → Windows 11" in table and "created" in table
    # a client's log holds what it owns: the device's changes among them, and pages like every list
    first = cli("changes", "client", "acme", "--limit", "1", "--json")
    assert [c["label"] for c in json.loads(first.stdout)["changes"]] == ["acme-lt9"]
    assert "more exist" in first.stderr and "--offset 1" in first.stderr
    unknown = cli("changes", "gadget", "acme-lt9", check=False)
    assert unknown.returncode != 0 and "not one of" in unknown.stderr and "device" in unknown.stderr
    missing = cli("changes", "device", "acme-lt404", check=False)
    assert missing.returncode != 0 and "acme-lt404" in missing.stderr and missing.stderr.count("\n") == 1

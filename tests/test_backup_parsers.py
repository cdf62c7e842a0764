"""Backup notification parsers, on realistic messages (tests/data/backup_emails/*.eml).

Sizes are binary: 1 KB = 1024 bytes, 1 MB = 1024**2, 1 GB = 1024**3, rounded half-up to the byte.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenure.intake.parsers import (
    ParsedRun,
    acronis,
    backup_exec,
    duplicati,
    macrium,
    parse_backup_email,
    parse_csv_report,
    synology,
    veeam,
    windows_backup,
)
from tenure.intake.parsers.common import decide, parse_size, parse_when, view_of

FIXTURES = Path(__file__).parent / "data" / "backup_emails"
PRODUCT_PARSERS = (acronis, backup_exec, duplicati, macrium, synology, veeam, windows_backup)
STATUSES = {"failure", "warning", "success"}
WSB = "Windows Server Backup"  # the job name: Windows Server Backup has one backup, unnamed


def load(name: str) -> Message:
    return email.message_from_bytes((FIXTURES / name).read_bytes(), policy=email.policy.default)


def only_run(message: Message) -> ParsedRun:
    runs = parse_backup_email(message)
    assert runs is not None, "no parser recognised the message"
    assert len(runs) == 1
    return runs[0]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class Expected:
    fixture: str
    product: str
    job: str
    device: str | None
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    size_bytes: int | None
    rule: str
    detail: str  # a fragment the technician's line must contain


EXPECTED = [
    # Veeam Backup & Replication: "[Result] Job (N VMs)"; a multi-VM job backs up no single device
    Expected(
        "veeam_success.eml", "veeam", "Daily VMs", None, "success",
        at("2025-01-12T22:00:12+01:00"), at("2025-01-12T22:14:42+01:00"),
        12_670_153_523, "veeam.subject", "transferred 11.8 GB",  # 11.8 GB
    ),
    Expected(  # the run crossed midnight: the end is on the next day
        "veeam_warning.eml", "veeam", "Daily VMs", None, "warning",
        at("2025-01-13T23:50:05+01:00"), at("2025-01-14T00:31:40+01:00"),
        851_443_712, "veeam.subject", "FS01: Changed block tracking cannot be enabled",  # 812 MB
    ),
    Expected(
        "veeam_failure.eml", "veeam", "SQL01 Nightly", "SQL01", "failure",
        at("2025-01-15T00:30:02-05:00"), at("2025-01-15T01:02:19-05:00"),
        0, "veeam.subject", "Failed to create VM snapshot",
    ),
    # Veeam Agent for Windows / Linux: "[Result] Job (computer)"
    Expected(
        "veeam_agent_success.eml", "veeam_agent", "Backup Job FS01", "FS01", "success",
        at("2025-01-13T23:00:05+00:00"), at("2025-01-13T23:17:48+00:00"),
        7_301_444_403, "veeam_agent.subject", "transferred 6.8 GB",  # 6.8 GB
    ),
    Expected(
        "veeam_agent_warning.eml", "veeam_agent", "Backup Job RECEPTION-PC", "RECEPTION-PC", "warning",
        at("2025-01-14T12:30:02-08:00"), at("2025-01-14T12:36:57-08:00"),
        1_288_490_189, "veeam_agent.subject", "being used by another process",  # 1.2 GB
    ),
    Expected(
        "veeam_agent_failure.eml", "veeam_agent", "Backup Job web01", "web01", "failure",
        at("2025-01-15T02:00:01+01:00"), at("2025-01-15T02:00:47+01:00"),
        0, "veeam_agent.subject", "mount error(13): Permission denied",
    ),
    # Acronis Cyber Protect: "Backup of <device> succeeded | succeeded with warnings | failed"
    Expected(
        "acronis_success.eml", "acronis", "Workstations - daily", "ACC-WS07", "success",
        at("2025-01-14T12:30:04+01:00"), at("2025-01-14T12:41:52+01:00"),
        2_587_717_796, "acronis.subject", "Backup success",  # 2.41 GB
    ),
    Expected(
        "acronis_warning.eml", "acronis", "Servers - nightly image", "ACC-SRV01", "warning",
        at("2025-01-15T22:00:03+01:00"), at("2025-01-15T23:31:27+01:00"),
        40_587_440_947, "acronis.subject", "14 files on E: were skipped",  # 37.8 GB
    ),
    Expected(
        "acronis_failure.eml", "acronis", "Workstations - daily", "ACC-LT03", "failure",
        at("2025-01-16T12:30:02+01:00"), at("2025-01-16T13:04:58+01:00"),
        None, "acronis.subject", 'Failed to connect to the backup location "Cloud storage"',
    ),
    # Synology Hyper Backup backs up the NAS itself; Active Backup for Business another machine
    Expected(
        "synology_hyper_backup_success.eml", "synology", "Nightly-to-C2", "NAS01", "success",
        at("2025-01-14T01:00:03+01:00"), at("2025-01-14T01:42:51+01:00"),
        9_341_553_869, "synology.hyper_backup", "has completed",  # 8.7 GB
    ),
    Expected(
        "synology_hyper_backup_warning.eml", "synology", "Nightly-to-C2", "NAS01", "warning",
        at("2025-01-15T01:00:02+01:00"), at("2025-01-15T01:51:19+01:00"),
        956_301_312, "synology.hyper_backup", "jo.pst: file is in use",  # 912 MB
    ),
    Expected(
        "synology_hyper_backup_failure.eml", "synology", "Weekly-USB", "NAS01", "failure",
        at("2025-01-19T03:00:02+01:00"), at("2025-01-19T03:00:38+01:00"),
        None, "synology.hyper_backup", "backup destination is unavailable",
    ),
    Expected(
        "synology_active_backup_success.eml", "synology", "FS01-Daily", "FS01", "success",
        at("2025-01-14T21:00:01+01:00"), at("2025-01-14T21:18:09+01:00"),
        5_690_831_667, "synology.active_backup", "has completed",  # 5.3 GB
    ),
    Expected(
        "synology_active_backup_failure.eml", "synology", "WS-Reception", "RECEPTION-PC", "failure",
        at("2025-01-14T12:30:00+01:00"), at("2025-01-14T12:45:04+01:00"),
        None, "synology.active_backup", "Agent is disconnected",
    ),
    # Macrium Reflect: "HOST(Definition) Macrium Reflect - Backup Success | with Warnings | Failure"
    Expected(
        "macrium_success.eml", "macrium", "Daily Image", "FS01", "success",
        at("2025-01-14T22:00:02+00:00"), at("2025-01-14T22:19:31+00:00"),
        19_993_072_763, "macrium.subject", "Image Completed Successfully",  # 18.62 GB
    ),
    Expected(
        "macrium_warning.eml", "macrium", "Daily Image", "FS01", "warning",
        at("2025-01-15T22:00:01+00:00"), at("2025-01-15T22:23:58+00:00"),
        2_222_645_576, "macrium.subject", "less than 5% free space",  # 2.07 GB
    ),
    Expected(
        "macrium_failure.eml", "macrium", "Documents", "WS-ACCT-02", "failure",
        at("2025-01-16T18:00:01+00:00"), None,
        None, "macrium.subject", "The network path was not found",
    ),
    # Duplicati: the verdict is only in the body; the Unix time in brackets is exact
    Expected(
        "duplicati_success.eml", "duplicati", "Office Docs to B2", None, "success",
        at("2025-01-14T01:00:00+00:00"), at("2025-01-14T01:20:30+00:00"),
        104_857_600, "duplicati.parsed_result", "ParsedResult success",
    ),
    Expected(  # its warning says "Failed to process path": a word in a log line is not the verdict
        "duplicati_warning.eml", "duplicati", "Reception PC", None, "warning",
        at("2025-01-15T12:00:00+00:00"), at("2025-01-15T12:10:58+00:00"),
        3_355_443, "duplicati.parsed_result", r"Failed to process path: C:\Users\front",
    ),
    Expected(
        "duplicati_error.eml", "duplicati", "Office Docs to B2", None, "failure",
        at("2025-01-16T01:00:00+00:00"), at("2025-01-16T01:04:15+00:00"),
        52_428_800, "duplicati.parsed_result", "(503) Service Unavailable",
    ),
    Expected(  # a fatal error: no result object, only "Failed: <message>"
        "duplicati_fatal.eml", "duplicati", "Reception PC", None, "failure",
        None, None, None, "duplicati.failed", "(401) Unauthorized",
    ),
    # Backup Exec: "Job Success" whose body says "completed successfully. However, ..." is a warning
    Expected(
        "backup_exec_success.eml", "backup_exec", "SILVER-Daily Incremental", "SILVER", "success",
        at("2025-01-10T23:00:02-06:00"), at("2025-01-11T01:14:55-06:00"),
        48_213_455_872, "backup_exec.subject", "Completed status: Successful",
    ),
    Expected(
        "backup_exec_warning.eml", "backup_exec", "SILVER-Weekly Full", "SILVER", "warning",
        at("2025-01-11T23:00:01-06:00"), at("2025-01-12T06:42:03-06:00"),
        512_338_102_784, "backup_exec.however_warning", "14 files were skipped",
    ),
    Expected(
        "backup_exec_failure.eml", "backup_exec", "SQL01-Full", "SILVER", "failure",
        at("2025-01-14T23:30:00-06:00"), at("2025-01-15T00:47:31-06:00"),
        1_073_741_824, "backup_exec.subject", "0xe00084f4",
    ),
    # Windows Server Backup: the WBJobReport.ps1 report, and mailed wbadmin output
    Expected(
        "windows_backup_report_success.eml", "windows_backup", WSB, "DC01", "success",
        at("2025-01-13T21:00:01+01:00"), at("2025-01-13T21:42:15+01:00"),
        193_265_359_913, "windows_backup.report", "Backup Result: Successful",  # 43.41 MB + 61.2 + 118.75 GB
    ),
    Expected(
        "windows_backup_report_failure.eml", "windows_backup", WSB, "DC01", "failure",
        at("2025-01-14T21:00:01+01:00"), at("2025-01-14T21:03:37+01:00"),
        0, "windows_backup.report", "not enough disk space to create the volume shadow copy",
    ),
    Expected(  # wbadmin names its log after the start, day first: Backup-14-01-2025_21-00-02.log
        "windows_backup_wbadmin_success.eml", "windows_backup", WSB, "HV-SRV01", "success",
        at("2025-01-14T21:00:02+00:00"), None, None, "windows_backup.wbadmin", "successfully completed",
    ),
    Expected(
        "windows_backup_wbadmin_warning.eml", "windows_backup", WSB, "HV-SRV01", "warning",
        at("2025-01-15T21:00:01+00:00"), None, None, "windows_backup.wbadmin", "completed with warnings",
    ),
    Expected(
        "windows_backup_wbadmin_failure.eml", "windows_backup", WSB, "HV-SRV01", "failure",
        at("2025-01-16T21:00:03+00:00"), None, None, "windows_backup.wbadmin", "network path was not found",
    ),
]  # fmt: skip


@pytest.mark.parametrize("expected", EXPECTED, ids=[e.fixture.removesuffix(".eml") for e in EXPECTED])
def test_product_and_status_from_fixture(expected: Expected) -> None:
    run = only_run(load(expected.fixture))
    assert run.product == expected.product
    assert run.job == expected.job
    assert run.device == expected.device
    assert run.status == expected.status
    assert run.started_at == expected.started_at
    assert run.finished_at == expected.finished_at
    assert run.size_bytes == expected.size_bytes
    assert run.rule == expected.rule
    assert expected.detail in run.detail
    assert "\n" not in run.detail and len(run.detail) <= 240
    for moment in (run.started_at, run.finished_at):
        assert moment is None or moment.tzinfo is not None


def test_every_fixture_is_covered() -> None:
    covered = {e.fixture for e in EXPECTED} | {
        "csv_attachment.eml",
        "csv_body.eml",
        "unknown_conversation.eml",
        "unknown_newsletter.eml",
    }
    assert {p.name for p in FIXTURES.glob("*.eml")} == covered


def test_each_product_is_tested_for_each_status() -> None:
    seen = {(e.product, e.status) for e in EXPECTED} | {("csv", s) for s in STATUSES}
    products = {e.product for e in EXPECTED} | {"csv"}
    assert seen == {(p, s) for p in products for s in STATUSES}


# ------------------------------------------------------------------ generic CSV report


def test_csv_attachment_gives_one_run_per_readable_row() -> None:
    runs = parse_backup_email(load("csv_attachment.eml"))
    assert runs is not None
    cet = timezone(timedelta(hours=1))  # the Date header's zone, for times written without one
    assert [(r.job, r.device, r.status) for r in runs] == [
        ("Nightly-FS01", "FS01", "success"),
        ("Nightly-SQL01", "SQL01", "warning"),
        ("Nightly-WS07", "WS07", "failure"),
    ]  # the "Running" row is no result yet: skipped, not guessed
    fs01, sql01, ws07 = runs
    assert fs01.started_at == datetime(2025, 1, 14, 22, 0, 5, tzinfo=cet)
    assert fs01.size_bytes == 48_533_130_445  # 45.2 GB
    assert sql01.started_at == datetime(2025, 1, 14, 23, 0, tzinfo=cet)
    assert sql01.size_bytes == 12_582_912_000  # a bare number is bytes
    assert sql01.detail == 'Log backup skipped: database "Billing" is in SIMPLE recovery'
    assert ws07.finished_at is None
    assert ws07.detail.startswith("Target unreachable")
    assert {r.product for r in runs} == {"csv"} and {r.rule for r in runs} == {"csv.row"}


def test_csv_body_with_semicolons_decimal_commas_and_a_unit_in_the_header() -> None:
    runs = parse_backup_email(load("csv_body.eml"))
    assert runs is not None
    est = timezone(timedelta(hours=-5))
    assert [(r.job, r.device, r.status, r.size_bytes) for r in runs] == [
        ("Imaging-PC1", "LD-PC1", "success", 15_569_256_448),  # "14,5" in a "Size (GB)" column
        ("Imaging-PC2", "LD-PC2", "warning", 10_468_982_784),  # 9.75 GB
        ("Server-Files", "LD-SRV", "failure", 0),
    ]
    # day first is unambiguous here (16 cannot be a month)
    assert runs[0].started_at == datetime(2025, 1, 16, 1, 0, tzinfo=est)


def test_parse_csv_report_directly() -> None:
    text = (
        "host,job,result,start time,end time,bytes\n"
        "fs01,Nightly,Success,2025-01-14T22:00:00Z,2025-01-14T22:30:00Z,1024\n"
        "fs02,Nightly,Success with errors,2025-01-14T22:00:00,,\n"
        ",Nameless host,Failed,,,\n"
        "fs03,,Failed,,,\n"
    )
    runs = parse_csv_report(text)
    assert [(r.device, r.job, r.status) for r in runs] == [
        ("fs01", "Nightly", "success"),
        ("fs02", "Nightly", "failure"),  # "errors" outranks "success"
        (None, "Nameless host", "failure"),
    ]  # the row without a job is skipped
    assert runs[0].started_at == datetime(2025, 1, 14, 22, 0, tzinfo=UTC)
    assert runs[0].size_bytes == 1024
    assert runs[1].started_at is None  # no zone stated and none given: not guessed


def test_csv_without_the_needed_columns_gives_nothing() -> None:
    assert parse_csv_report("") == []
    assert parse_csv_report("just one line") == []
    assert parse_csv_report("colour,shape\nred,round\n") == []


# ------------------------------------------------------------------ failure before warning before success


def test_decide_ranks_failure_over_warning_over_success_whatever_the_order() -> None:
    candidates = [("success", "a", True), ("warning", "b", True), ("failure", "c", True)]
    assert decide(candidates) == ("failure", "c")
    assert decide([("success", "a", True), ("warning", "b", True)]) == ("warning", "b")
    assert decide([("failure", "a", False), ("success", "b", True)]) == ("success", "b")
    assert decide([("failure", "a", False)]) is None


def _message(subject: str, body: str, sender: str = "reports@client.example") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "alerts+client@msp.example"
    message["Subject"] = subject
    message["Date"] = "Tue, 14 Jan 2025 22:30:00 +0100"
    message.set_content(body)
    return message


def test_a_body_that_says_failed_and_success_is_a_failure() -> None:
    run = only_run(
        _message(
            "FS01(Daily Image) Macrium Reflect - Backup Success",
            "Success :)\nComputer Name: FS01\nBackup Definition: Daily Image.xml\n"
            "Backup aborted! - Read failed - 23 - Data error (cyclic redundancy check)\n",
        )
    )
    assert (run.status, run.rule) == ("failure", "macrium.body")
    assert "cyclic redundancy check" in run.detail


def test_backup_exec_however_is_a_warning_but_a_failed_status_still_wins() -> None:
    however = "The job completed successfully.  However, the following conditions were encountered:\n"
    body = "Job server: SILVER\nJob name: Nightly\nCompleted status: {status}\n\n" + however
    body += "3 files skipped\n"
    subject = 'Backup Exec Alert: Job Success (Server: "SILVER") (Job: "Nightly")'
    warned = only_run(_message(subject, body.format(status="Successful")))
    assert (warned.status, warned.rule) == ("warning", "backup_exec.however_warning")
    assert warned.detail == "3 files skipped"
    failed = only_run(_message(subject, body.format(status="Failed")))
    assert (failed.status, failed.rule) == ("failure", "backup_exec.completed_status")


def test_a_failed_vm_outranks_a_success_subject() -> None:
    raw = (FIXTURES / "veeam_success.eml").read_bytes()
    first_row = b'<span style="color: #00B050;">Success</span>'
    message = email.message_from_bytes(
        raw.replace(first_row, b"<span>Failed</span>", 1), policy=email.policy.default
    )
    run = only_run(message)
    assert (run.status, run.rule) == ("failure", "veeam.object_status")


def test_duplicati_failed_line_outranks_a_warning_result() -> None:
    body = "MainOperation: Backup\nParsedResult: Warning\nFailed: Disk full\n"
    run = only_run(_message("Duplicati Backup report for Docs", body, "duplicati@client.example"))
    assert (run.status, run.rule, run.detail) == ("failure", "duplicati.failed", "Disk full")


# ------------------------------------------------------------------ unrecognised mail


@pytest.mark.parametrize("fixture", ["unknown_conversation.eml", "unknown_newsletter.eml"])
def test_unknown_mail_is_not_recognised(fixture: str) -> None:
    assert parse_backup_email(load(fixture)) is None


def test_empty_and_non_backup_messages_are_not_recognised() -> None:
    assert parse_backup_email(EmailMessage()) is None
    assert parse_backup_email(_message("", "")) is None
    restore = "MainOperation: Restore\nParsedResult: Success\n"
    assert parse_backup_email(_message("Duplicati Restore report for Docs", restore)) is None
    assert parse_backup_email(_message("Hello", "backup failed, backup succeeded, completed")) is None


# ------------------------------------------------------------------ dates


def test_malformed_dates_leave_times_unknown_and_keep_the_verdict() -> None:
    body = (
        "Job server: SILVER\nJob name: Nightly\n"
        "Job started: Fooday, Smarch 45, 2025 at 25:61:00 PM\n"
        "Job ended: 99/99/9999 99:99\n"
        "Completed status: Successful\n"
    )
    run = only_run(_message('Backup Exec Alert: Job Success (Server: "SILVER") (Job: "Nightly")', body))
    assert (run.status, run.started_at, run.finished_at) == ("success", None, None)


def test_a_garbled_veeam_session_date_leaves_times_unknown() -> None:
    raw = (FIXTURES / "veeam_success.eml").read_bytes()
    garbled = raw.replace(b"Sunday, 12 January 2025 22:00:12", b"Sunday, 45 Smarch 2025 22:00:12")
    run = only_run(email.message_from_bytes(garbled, policy=email.policy.default))
    assert (run.status, run.started_at, run.finished_at) == ("success", None, None)


def test_without_a_date_header_unzoned_times_are_unknown_but_stated_ones_are_kept() -> None:
    raw = (FIXTURES / "acronis_success.eml").read_bytes()
    no_date = email.message_from_bytes(
        raw.replace(b"Date: Tue, 14 Jan 2025 12:42:10 +0100", b"Date: not a date"),
        policy=email.policy.default,
    )
    run = only_run(no_date)
    assert (run.status, run.started_at) == ("success", None)
    raw = (FIXTURES / "duplicati_success.eml").read_bytes()
    undated = raw.replace(b"Date: Tue", b"X-Date: Tue")
    dup = only_run(email.message_from_bytes(undated, policy=email.policy.default))
    assert dup.started_at == at("2025-01-14T01:00:00+00:00")  # the Unix time needs no zone


def test_parse_when_never_completes_a_time_from_the_clock() -> None:
    cet = timezone(timedelta(hours=1))
    assert parse_when("22:00:12", cet) is None  # no date: not "today"
    assert parse_when("2025-01-14 22:00:12", None) is None  # no zone: not local time
    assert parse_when("2025-01-14 22:00:12", cet) == datetime(2025, 1, 14, 22, 0, 12, tzinfo=cet)
    assert parse_when("01/14/2025 10:00:03 PM (UTC-05:00)", cet) == at("2025-01-14T22:00:03-05:00")
    assert parse_when("2025-01-14T21:00:00Z", cet) == at("2025-01-14T21:00:00+00:00")
    assert parse_when("Friday, January 10, 2025 at 11:00:02 PM", cet) == at("2025-01-10T23:00:02+01:00")
    for garbage in ("", "soon", "0:14:30", "31/31/2031 31:31", "9" * 500, "2025-13-45 25:61"):
        assert parse_when(garbage, cet) is None


def test_parse_size_uses_binary_units() -> None:
    assert parse_size("12.3 GB") == 13_207_024_435
    assert parse_size("812 MB") == 812 * 1024**2
    assert parse_size("1.5 TiB") == 1_649_267_441_664
    assert parse_size("1,234,567 bytes") == 1_234_567
    assert parse_size("14,5", default_unit="gb") == 15_569_256_448
    assert parse_size("0 B") == 0
    for garbage in (None, "", "n/a", "GB"):
        assert parse_size(garbage) is None


# ------------------------------------------------------------------ never raise

_SUBJECTS = st.sampled_from(
    [
        "[Success] ",
        "[Failed] ",
        "Backup of ",
        "[Synology] Backup task ",
        " Macrium Reflect - Backup ",
        "Duplicati Backup report for ",
        'Backup Exec Alert: Job Success (Server: "',
        "Failed Backup on ",
        "wbadmin ",
        "",
    ]
)
_FRAGMENTS = st.sampled_from(
    [
        "Veeam",
        "Backup job: ",
        "Agent Backup job: ",
        "\tStart time\t",
        "Start time: ",
        "End time: ",
        "Transferred\t",
        "Name\tStatus\tStart time\n",
        "Acronis",
        "Backup succeeded with warnings",
        "Synology",
        "Active Backup",
        "Backup task x on NAS has partially completed",
        "Macrium",
        "Backup aborted!",
        "ParsedResult: ",
        "MainOperation: Backup\n",
        "BeginTime: 1/14/2025 (17368",
        "Failed: ",
        "Backup Exec",
        "Completed status: ",
        "However, the following conditions were encountered:",
        "wbadmin",
        "The backup operation stopped before completing.",
        "Backup-99-99-2025_21-00-02.log",
        "Backup Result: ",
        "12.3 GB",
        "9" * 40,
        "\n",
        "\t",
        ": ",
    ]
)
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)
_LINE = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=80)
_BODIES = st.lists(st.one_of(_FRAGMENTS, _TEXT), max_size=30).map("".join)


def _arbitrary_message(subject: str, body: str, html: bool) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Someone <someone@client.example>"
    message["Subject"] = subject
    message["Date"] = "Tue, 14 Jan 2025 22:30:00 +0100"
    message.set_content(body)
    if html:
        message.add_alternative(f"<html><body><table><tr><td>{body}</td></tr></table>", subtype="html")
    return message


def _assert_well_formed(runs: list[ParsedRun] | None) -> None:
    assert runs is None or runs, "an empty list would be neither a result nor a quarantine"
    for run in runs or []:
        assert run.status in STATUSES
        assert run.job
        assert run.size_bytes is None or run.size_bytes >= 0
        assert all(m is None or m.tzinfo is not None for m in (run.started_at, run.finished_at))


@given(prefix=_SUBJECTS, rest=_LINE, body=_BODIES, html=st.booleans())
def test_arbitrary_text_never_raises(prefix: str, rest: str, body: str, html: bool) -> None:
    message = _arbitrary_message(prefix + rest, body, html)
    _assert_well_formed(parse_backup_email(message))
    view = view_of(message)
    for product in PRODUCT_PARSERS:  # the product parsers themselves, not only the safety net
        _assert_well_formed(product.parse(view))


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    _assert_well_formed(parse_backup_email(message))


@given(
    header=st.sampled_from(["job,host,status,start,end,size", "Task;Device;Result;Started;Size (GB)", ""]),
    body=_TEXT,
)
def test_arbitrary_csv_never_raises(header: str, body: str) -> None:
    runs = parse_csv_report(header + "\n" + body)
    assert isinstance(runs, list)
    _assert_well_formed(runs or None)


def test_a_compat32_message_reads_the_same_as_an_email_message() -> None:
    # the SMTP listener or a replay may hand over a legacy Message (encoded headers, no get_content)
    for expected in EXPECTED:
        legacy = email.message_from_bytes((FIXTURES / expected.fixture).read_bytes())
        assert parse_backup_email(legacy) == parse_backup_email(load(expected.fixture)), expected.fixture

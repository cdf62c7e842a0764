"""Phase 4's restic hand-over as automatic steps of a run, on real restic repositories in a temporary folder:
copy, check and count into the client's repository; forget our snapshots of the client only when the copy
is verified and the answers allow deleting data; a person otherwise."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tenure.book.service import import_book
from tenure.clients.accounts import set_secret
from tenure.connectors import restic
from tenure.connectors.registry import set_handover
from tenure.offboarding import service
from tests.fakes.tacticalrmm import FakeTacticalRMM, acme_book, running, seed_acme
from tests.test_offboarding_runner import ANSWERS, T0, at, finish_by_hand, options, step

if shutil.which("restic") is None:
    pytest.fail("restic is not installed: apt-get install restic", pytrace=False)


@pytest.fixture
def rmm() -> Iterator[FakeTacticalRMM]:
    with running() as server:
        yield server


@pytest.fixture
def repos(tmp_path) -> tuple[restic.Repository, restic.Repository]:
    """Our repository with two snapshots of acme and one of another client; the client's, not there yet."""
    ours = restic.Repository(str(tmp_path / "msp-repo"), "msp-secret")
    restic.init(ours)
    data = tmp_path / "data"
    data.mkdir()
    (data / "ledger.xlsx").write_bytes(b"numbers" * 1000)
    restic.run(ours, "backup", str(data), "--host", "ACME-DC01", "--tag", "acme")
    (data / "notes.txt").write_text("more")
    restic.run(ours, "backup", str(data), "--host", "ACME-DC01", "--tag", "acme")
    restic.run(ours, "backup", str(data), "--host", "OTHER-SRV", "--tag", "other")
    return ours, restic.Repository(str(tmp_path / "acme-copy"), "client-secret")


def book(rmm: FakeTacticalRMM, repo: restic.Repository) -> dict[str, Any]:
    data = acme_book(rmm.url, features=("patching", "automated_tasks"), siem=False)
    acme = data["clients"][0]
    acme["accounts"].append({"key": "acme-backup", "kind": "backup", "vendor": "restic", "external_id": repo.location})
    acme["backup_jobs"] = [{**acme["backup_jobs"][0], "product": "restic", "name": "DC01 files"}]
    return data


def start(db: Any, rmm: FakeTacticalRMM, repos: Any, answers: dict[str, Any], handover: bool = True) -> dict[str, Any]:
    ours, theirs = repos
    seed_acme(rmm)
    import_book(db, book(rmm, ours))
    set_secret(db, "acme-backup", ours.password)
    if handover:
        set_handover(db, "acme-backup", theirs.location, theirs.password, tag="acme")
    at(T0)
    return service.apply(db, "acme", answers, options=options(rmm))


def approve(db: Any, rmm: FakeTacticalRMM) -> dict[str, Any]:
    service.answer(db, "approve", "acme", "p3.approval")
    return service.apply(db, "acme", None, options=options(rmm))


def finish(db: Any, rmm: FakeTacticalRMM, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    opts = options(rmm)
    at(T0 + timedelta(hours=3))
    return finish_by_hand(db, service.apply(db, "acme", None, options=opts), opts, keep=keep)


def test_the_copy_is_handed_over_verified_and_only_then_our_snapshots_forgotten(db, rmm, repos):
    ours, theirs = repos
    status = start(db, rmm, repos, {**ANSWERS, "delete_data": True})
    handover, verify = step(status, "p4.handover.acme-backup"), step(status, "p4.handover-verify.acme-backup")
    assert handover["kind"] == "auto" and handover["state"] == "done"
    assert handover["result"]["snapshots_in_copy"] == 2 and handover["result"]["verified"] is True
    assert handover["result"]["filters"] == ["--tag", "acme"]
    assert verify["state"] == "done" and verify["result"]["snapshots_in_source"] == 2
    assert [s.hostname for s in restic.snapshots(theirs)] == ["ACME-DC01", "ACME-DC01"]
    stop = step(approve(db, rmm), "p4.job-stop.dc01-nightly")
    assert stop["kind"] == "auto" and stop["waiting_on"] == "person"  # the schedule is on the client's machine
    assert "ACME-DC01" in stop["instructions"] and "restic backup" in stop["instructions"]

    status = finish(db, rmm, keep=("p4.account-close.acme-backup",))
    close = step(status, "p4.account-close.acme-backup")
    assert close["state"] == "done" and close["result"]["forgotten"] == 2, close
    assert [s.hostname for s in restic.snapshots(ours)] == ["OTHER-SRV"]  # the other client's data stays
    assert len(restic.snapshots(theirs)) == 2
    assert status["state"] == "done"


def test_each_restic_command_of_a_hand_over_is_on_the_attempts_record_without_a_password(db, rmm, repos, tmp_path):
    start(db, rmm, repos, ANSWERS)
    attempts = step(service.status(db, "acme", with_attempts=True), "p4.handover.acme-backup")["attempt_log"]
    calls = attempts[-1]["calls"]
    assert [c["path"].split()[0] for c in calls] == ["cat", "init", "copy", "check", "snapshots", "snapshots"]
    assert all(c["method"] == "restic" and isinstance(c["ms"], int) for c in calls)
    assert calls[0]["status"] == 1 and calls[0]["error"]  # no repository yet: the probe that led to `init`
    assert [c["status"] for c in calls[1:]] == [0, 0, 0, 0, 0]
    assert str(tmp_path / "acme-copy") in calls[1]["path"]
    assert not any("secret" in json.dumps(c) for c in calls)


def test_a_password_in_a_repository_url_is_never_recorded():
    url = "rest:https://backup:hunter2@vault.example:8000/acme"
    assert restic.shown(url) == "rest:https://backup:***@vault.example:8000/acme"
    assert restic.shown("sftp:backup@vault.example:/srv/restic") == "sftp:backup@vault.example:/srv/restic"


def test_without_permission_to_delete_our_snapshots_stay_and_a_person_closes_the_account(db, rmm, repos):
    ours, _ = repos
    status = start(db, rmm, repos, ANSWERS)  # delete_data not given: no
    assert step(status, "p4.handover-verify.acme-backup")["state"] == "done"
    approve(db, rmm)
    status = finish(db, rmm, keep=("p4.account-close.acme-backup",))
    close = step(status, "p4.account-close.acme-backup")
    assert close["state"] == "waiting" and "did not allow deleting" in close["instructions"]
    assert len(restic.snapshots(ours)) == 3


def test_a_copy_that_cannot_be_made_is_retried_with_the_reason(db, rmm, repos, tmp_path):
    ours, theirs = repos
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the client's repository should go")
    seed_acme(rmm)
    import_book(db, book(rmm, ours))
    set_secret(db, "acme-backup", ours.password)
    set_handover(db, "acme-backup", str(blocked), theirs.password)
    at(T0)
    status = service.apply(db, "acme", ANSWERS, options=options(rmm))
    handover = step(status, "p4.handover.acme-backup")
    assert handover["state"] == "waiting" and "restic" in handover["error"], handover
    assert step(status, "p4.handover-verify.acme-backup")["state"] == "pending"


def test_without_a_destination_the_hand_over_is_planned_for_a_person(db, rmm, repos):
    status = start(db, rmm, repos, ANSWERS, handover=False)
    handover = step(status, "p4.handover.acme-backup")
    assert handover["kind"] == "manual" and "Export a full copy" in handover["instructions"]

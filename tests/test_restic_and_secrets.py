"""restic, the real binary, on real repositories in a temporary folder; secrets sealed at rest."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tenure import clock
from tenure.book.demo import load_demo
from tenure.book.service import export_book, import_book
from tenure.clients.accounts import set_secret
from tenure.clients.models import BackupJob, VendorAccount
from tenure.connectors import restic
from tenure.connectors.backups import sync_backups
from tenure.db.changelog import ObjectChange
from tenure.intake import missed
from tenure.intake.models import Alert

if shutil.which("restic") is None:  # CI installs it (.ci/run); say so rather than pass quietly
    pytest.fail("restic is not installed: apt-get install restic", pytrace=False)


def backup(repo: restic.Repository, folder, *args: str) -> None:
    restic.run(repo, "backup", "--json", str(folder), *args)


@pytest.fixture
def source(tmp_path):
    repo = restic.Repository(str(tmp_path / "msp-repo"), "msp-secret")
    restic.init(repo)
    data = tmp_path / "data"
    data.mkdir()
    (data / "ledger.xlsx").write_bytes(b"numbers" * 1000)
    return repo, data


def test_hand_over_copies_verifies_and_only_then_forgets(source, tmp_path):
    repo, data = source
    backup(repo, data, "--host", "ACME-SRV02", "--tag", "acme")
    (data / "notes.txt").write_text("more")
    backup(repo, data, "--host", "ACME-SRV02", "--tag", "acme")
    backup(repo, data, "--host", "OTHER-SRV", "--tag", "other")
    client_repo = restic.Repository(str(tmp_path / "client-copy"), "client-secret")
    done = restic.hand_over(repo, client_repo, "--tag", "acme")
    assert done.as_json() == {"snapshots_in_source": 2, "snapshots_in_copy": 2, "verified": True}
    assert restic.hand_over(repo, client_repo, "--tag", "acme").snapshots_in_copy == 2  # again: nothing doubled
    with pytest.raises(restic.ResticError, match="do not allow deleting"):
        restic.forget(repo, "--tag", "acme", verified=done, delete_allowed=False)
    assert restic.forget(repo, "--tag", "acme", verified=done, delete_allowed=True) == 2
    assert [s.hostname for s in restic.snapshots(repo)] == ["OTHER-SRV"]  # other clients' data untouched
    restored = tmp_path / "restored"
    restic.restore(client_repo, "latest", restored)
    assert any(p.name == "notes.txt" for p in restored.rglob("*"))


def test_snapshots_feed_the_backup_jobs_and_close_a_missed_alert(db, source):
    repo, data = source
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    book = export_book(db)
    acme = next(c for c in book["clients"] if c["key"] == "acme")
    next(a for a in acme["accounts"] if a["key"] == "acme-backup")["external_id"] = repo.location
    import_book(db, book)
    set_secret(db, "acme-backup", repo.password)
    missed.sweep(db)  # the restic job (every 6 h) starts counting
    clock.set_now("2026-11-25T15:00:00Z")
    assert missed.sweep(db)  # a day without a snapshot: missed
    backup(repo, data, "--host", "ACME-SRV02")
    clock.set_now(datetime.now(UTC) + timedelta(seconds=5))
    (result,) = sync_backups(db, "acme-backup")
    assert (result.snapshots, result.results, result.error) == (1, 1, None)
    with db.reader() as s:
        job = s.scalars(select(BackupJob).where(BackupJob.key == "acme-srv02-restic")).one()
        assert job.last_status == "success"
        alerts = s.scalars(select(Alert).where(Alert.backup_job_id == job.id)).all()
        assert [a.status for a in alerts] == ["resolved"]
    assert sync_backups(db, "acme-backup")[0].results == 0  # nothing newer: nothing recorded twice


def test_secrets_are_sealed_never_listed_and_each_reveal_is_logged(cli, db):
    cli("demo")
    cli("account", "set-secret", "acme-rmm", input="tk-very-secret-key\n")
    listed = cli("account", "list", "--json").stdout
    assert "tk-very-secret-key" not in listed
    assert next(a for a in json.loads(listed)["accounts"] if a["key"] == "acme-rmm")["has_secret"]
    with db.reader() as s:
        stored = s.scalars(select(VendorAccount.secret).where(VendorAccount.key == "acme-rmm")).one()
        assert b"tk-very-secret-key" not in stored
        assert "tk-very-secret-key" not in json.dumps([c.after for c in s.scalars(select(ObjectChange))])
    assert cli("account", "reveal", "acme-rmm").stdout.strip() == "tk-very-secret-key"
    with db.reader() as s:
        revealed = s.scalars(select(ObjectChange).where(ObjectChange.action == "reveal")).one()
        assert revealed.actor.startswith("cli:") and revealed.object_label == "acme-rmm"

"""The missed-backup sweep (each missed run raised once) and the unpaid-work report."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from tenure import clock
from tenure.book.demo import load_demo
from tenure.book.history import history
from tenure.book.service import export_book, import_book
from tenure.clients.models import BackupJob
from tenure.intake import missed, service
from tenure.intake.models import Alert
from tenure.triage.report import unpaid_report
from tests.support import empty

UUID = "5f2b7c1e-8d4a-4e43-9b8e-2f1c0a9d7e61"  # acme-srv02-restic: every 6 hours, Chicago, 60 min grace


def restic_alerts(db):
    with db.reader() as s:
        job = s.scalars(select(BackupJob).where(BackupJob.ping_uuid == UUID)).one()
        return job, s.scalars(select(Alert).where(Alert.backup_job_id == job.id)).all()


def test_each_missed_run_is_raised_once_whatever_the_sweep_cadence(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    assert missed.sweep(db) == []  # the first sweep starts counting from now
    # a day later, four runs were due (00, 06, 12, 18 Chicago = 06, 12, 18, 00 UTC) and none reported
    for moment in ("2026-11-25T01:30:00Z", "2026-11-25T09:00:00Z", "2026-11-25T15:00:00Z", "2026-11-25T15:00:00Z"):
        clock.set_now(moment)
        missed.sweep(db)
    job, alerts = restic_alerts(db)
    (alert,) = alerts
    assert alert.count == 4 and alert.decision == "ticket" and alert.status == "firing"
    assert "Backup missed" in alert.title
    assert job.last_missed_expected.isoformat().startswith("2026-11-25T12:00")

    clock.set_now("2026-11-25T15:30:00Z")
    service.ingest(db, "ping", b"", meta={"path": f"/ping/{UUID}"})  # it runs again: the alert closes
    _, alerts = restic_alerts(db)
    assert alerts[0].status == "resolved"
    clock.set_now("2026-11-25T19:30:00Z")  # 18:00 UTC + 60 min grace passed with no result: a new miss
    missed.sweep(db)
    _, alerts = restic_alerts(db)
    assert [a.status for a in alerts] == ["resolved", "firing"] and alerts[1].count == 1


def test_unpaid_report_counts_free_work_and_names_the_offer_that_covers_it(db):
    empty(db)
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    for n in range(3):
        service.ingest(
            db,
            "event",
            json.dumps(
                {
                    "source": "probe",
                    "client": "maple",
                    "title": f"Disk full {n}",
                    "status": "firing",
                    "service": "monitoring",
                }
            ).encode(),
        )
    book = export_book(db)
    next(c for c in book["clients"] if c["key"] == "birch")["forward_alerts"] = True
    import_book(db, book)
    service.ingest(
        db,
        "event",
        json.dumps({"source": "probe", "client": "birch", "title": "Router down", "status": "firing"}).encode(),
    )
    report = unpaid_report(db, "2026-11")
    rows = {r["client"]: r for r in report["clients"]}
    # the demo's own printer alert plus these three
    assert rows["maple"]["suppressed"] == 4 and rows["maple"]["minutes_avoided"] == 4 * 45
    assert rows["maple"]["would_cover"]["offer"] == "watch"  # the cheapest offer covering monitoring
    # seed 004: a forwarded alert goes to the client's own contact and costs no technician time
    assert "monitoring" in rows["birch"]["uncovered_services"]
    assert rows["birch"]["reached_a_person"] == 0 and rows["birch"]["unpaid_minutes"] == 0
    assert report["totals"]["suppressed"] == sum(r["suppressed"] for r in report["clients"])


def test_the_sweep_logs_the_jobs_it_activates_not_its_bookkeeping_and_an_unreadable_job_waits_aside(db):
    clock.set_now("2026-11-24T15:00:00Z")
    load_demo(db)
    with db.unit_of_work() as s:  # a job activated before Tenure kept the time, and one whose schedule broke
        jobs = {j.key: j for j in s.scalars(select(BackupJob))}
        jobs["acme-srv02-restic"].activated_at = None
        jobs["acme-srv01-nightly"].schedule = "every fortnight-ish"
    logged = history(db, "backup-job", "acme-srv02-restic")["total"]
    assert missed.sweep(db) == []
    log = history(db, "backup-job", "acme-srv02-restic")
    assert log["total"] == logged + 1  # the activation; where the job is next due is bookkeeping, not logged
    activation = log["changes"][0]
    assert activation["action"] == "update" and activation["changed"] == {
        "activated_at": [None, "2026-11-24T15:00:00+00:00"]
    }
    for moment in ("2026-11-25T01:30:00Z", "2026-11-25T09:00:00Z"):  # the runs of 18:00, 00:00 and 06:00 UTC missed
        clock.set_now(moment)
        missed.sweep(db)
    clock.set_now("2026-11-25T09:30:00Z")
    service.ingest(db, "ping", b"", meta={"path": f"/ping/{UUID}"})  # a result: a backup run, not a logged change
    assert history(db, "backup-job", "acme-srv02-restic")["total"] == logged + 1
    job, alerts = restic_alerts(db)
    assert [a.count for a in alerts] == [3] and alerts[0].status == "resolved"
    assert job.last_status == "success" and job.next_expected_at is None  # the next sweep works it out afresh
    assert job.activated_at.isoformat() == "2026-11-24T15:00:00+00:00"
    with db.reader() as s:
        broken = s.scalars(select(BackupJob).where(BackupJob.key == "acme-srv01-nightly")).one()
        # due again at every sweep, raising nothing, while the jobs behind it were swept
        assert broken.next_expected_at is None and broken.last_missed_expected is None
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.backup_job_id == broken.id)) == 0

"""The missed-backup sweep (Healthchecks' model): a job with no result by `expected + grace` is missed.

Each missed run becomes a small `missed` payload that goes through intake like any other (so it is
matched, deduplicated onto the job's open alert and decided the same way), exactly once per run:
the job remembers the last expected time it reported. `next_expected_at` is when the job can next be
missed, so a sweep only reads the jobs that are due (an index seek), not all of them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from tenure import clock
from tenure.clients.models import BackupJob
from tenure.db.engine import Database
from tenure.intake import service
from tenure.intake.schedule import ScheduleError, due_missed, next_expected


def _next_due(job: BackupJob, after: datetime) -> datetime:
    return next_expected(job.schedule or "", job.timezone, after) + timedelta(minutes=job.grace_minutes)


def sweep(db: Database, now: datetime | None = None) -> list[service.Outcome]:
    """Raise a `missed` alert for every run due and not reported yet; returns their decisions."""
    now = now or clock.now()
    bodies: list[bytes] = []
    with db.unit_of_work() as s:
        due = s.scalars(
            select(BackupJob).where(
                BackupJob.status == "active",
                BackupJob.schedule.is_not(None),
                or_(BackupJob.next_expected_at.is_(None), BackupJob.next_expected_at <= now),
            )
        )
        for job in due:
            since = job.activated_at or job.last_result_at or now
            try:
                missed = due_missed(
                    job.schedule or "",
                    job.timezone,
                    job.grace_minutes,
                    job.last_result_at,
                    job.last_missed_expected,
                    now,
                    since=since,
                )
                anchor = max(t for t in (job.last_result_at, job.last_missed_expected, since, *missed[-1:]) if t)
                job.next_expected_at = _next_due(job, anchor)
            except ScheduleError:
                job.next_expected_at = None
                continue
            if job.activated_at is None:
                job.activated_at = since
            for expected in missed:
                bodies.append(
                    json.dumps(
                        {
                            "job": job.key,
                            "name": job.name,
                            "expected": expected.isoformat(),
                            "grace_minutes": job.grace_minutes,
                        }
                    ).encode()
                )
            if missed:
                job.last_missed_expected = missed[-1]
    if not bodies:
        return []
    return service.ingest_many(db, "missed", bodies)

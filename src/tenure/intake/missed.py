"""The missed-backup sweep (Healthchecks' model): a job with no result by `expected + grace` is missed.

Each missed run becomes a small `missed` payload that goes through intake like any other (so it is
matched, deduplicated onto the job's open alert and decided the same way), exactly once per run:
the job remembers the last expected time it reported. `next_expected_at` is when the job can next be
missed, so a sweep only reads the jobs that are due (an index seek), not all of them.

The jobs are read as plain rows and written back in one statement (`bulkwrite.update_rows`): a first sweep
after activating thousands of jobs works every one of them out, and the ORM's flush and change-log hook
cost ten times the schedule arithmetic. The sweep's own bookkeeping (`next_expected_at`,
`last_missed_expected`) is not change-logged (`BackupJob.__changelog_exclude__`); a job it activates is.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from tenure import clock
from tenure.clients.models import BackupJob
from tenure.db.bulkwrite import update_rows
from tenure.db.changelog import logged_state, record_updated
from tenure.db.engine import Database
from tenure.intake import service
from tenure.intake.schedule import Schedule, ScheduleError, due_missed, next_expected, parse_schedule

# what the sweep sets on a job it works out
_SET = ("next_expected_at", "last_missed_expected", "activated_at")


def sweep(db: Database, now: datetime | None = None) -> list[service.Outcome]:
    """Raise a `missed` alert for every run due and not reported yet; returns their decisions."""
    now = now or clock.now()
    bodies: list[bytes] = []
    table = BackupJob.__table__
    schedules: dict[str, Schedule | ScheduleError] = {}  # each distinct schedule parsed once a sweep
    with db.unit_of_work() as s:
        due = s.execute(
            select(*table.c).where(
                table.c.status == "active",
                table.c.schedule.is_not(None),
                or_(table.c.next_expected_at.is_(None), table.c.next_expected_at <= now),
            )
        ).mappings()
        changed: list[dict[str, Any]] = []
        activated: list[dict[str, Any]] = []
        for job in due:
            update, missed = _worked_out(job, now, schedules)
            if any(update[c] != job[c] for c in _SET):
                changed.append({"id": job["id"], **update})
            if update["activated_at"] != job["activated_at"]:
                before, after = logged_state(BackupJob, dict(job)), logged_state(BackupJob, dict(job) | update)
                activated.append({"id": job["id"], "label": job["key"], "client_id": job["client_id"],
                                  "before": before, "after": after})  # fmt: skip
            bodies += [
                json.dumps(
                    {"job": job["key"], "name": job["name"], "expected": expected.isoformat(),
                     "grace_minutes": job["grace_minutes"]}
                ).encode()
                for expected in missed
            ]  # fmt: skip
        update_rows(s.connection(), table, changed)
        record_updated(s, "backup_job", activated)
    if not bodies:
        return []
    return service.ingest_many(db, "missed", bodies)


def _worked_out(
    job: Any, now: datetime, schedules: dict[str, Schedule | ScheduleError]
) -> tuple[dict[str, Any], list[datetime]]:
    """A due job's new values (`_SET`) and the expected runs it missed. A job whose schedule or time zone
    cannot be read gets no next time and raises nothing: it stays due, and waits for a person to mend it."""
    text = job["schedule"] or ""
    schedule = schedules.get(text)
    if schedule is None:
        try:
            schedule = schedules[text] = parse_schedule(text)
        except ScheduleError as exc:
            schedule = schedules[text] = exc
    if isinstance(schedule, ScheduleError):
        return _unreadable(job), []
    since = job["activated_at"] or job["last_result_at"] or now
    try:
        missed = due_missed(
            schedule, job["timezone"], job["grace_minutes"], job["last_result_at"], job["last_missed_expected"], now,
            since=since,
        )  # fmt: skip
        anchor = max(t for t in (job["last_result_at"], job["last_missed_expected"], since, *missed[-1:]) if t)
        next_due = next_expected(schedule, job["timezone"], anchor) + timedelta(minutes=job["grace_minutes"])
    except ScheduleError:  # a time zone that is no IANA name
        return _unreadable(job), []
    return {
        "next_expected_at": next_due,
        "last_missed_expected": missed[-1] if missed else job["last_missed_expected"],
        "activated_at": job["activated_at"] or since,
    }, missed


def _unreadable(job: Any) -> dict[str, Any]:
    """A job whose schedule or time zone cannot be read: no next time, so it stays due; the rest as it was."""
    return {"next_expected_at": None, "last_missed_expected": job["last_missed_expected"],
            "activated_at": job["activated_at"]}  # fmt: skip

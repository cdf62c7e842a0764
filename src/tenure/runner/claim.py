"""Claiming due steps with a lease, so any number of workers share the work and a dead one's is taken over.

A step is due when it is `pending` or `waiting` with a `not_before` that has come (a step gets its
`not_before` only once every step it depends on is done or skipped, so a due step is ready), or when it is
`running` under a lease that has ended (its worker died). Steps waiting on a person have no `not_before`.

PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` then the lease, in one transaction: concurrent workers
never see the same rows. SQLite (one writer at a time): the candidates are read, then each is taken with a
conditional `UPDATE ... WHERE <still due>`; a worker that loses the race updates no row and moves on.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from tenure.db.engine import Database
from tenure.offboarding.flow import TERMINAL
from tenure.offboarding.models import OffboardingStep, StepAttempt

LEASE_SECONDS = 120  # renewed after every vendor call; a worker silent this long is taken for dead

Step = OffboardingStep


@dataclass(frozen=True)
class Claimed:
    """A step this worker holds, as it was when claimed (the row may move on without it)."""

    id: int
    run_id: int
    key: str
    kind: str
    action: str | None
    title: str
    target: dict[str, Any]
    instructions: str | None
    seconds: int | None
    attempts: int  # this attempt included
    idempotency_key: str
    attempt_id: int
    worker: str
    lease_until: datetime


def worker_id(name: str | None = None) -> str:
    """A worker's identity: host, pid, and a name or a random tag, so two runners in one process (the
    `serve` worker thread and a command, say) never pass for each other when a lease is checked."""
    return f"{socket.gethostname()}:{os.getpid()}:{name or secrets.token_hex(3)}"[:100]


def due(now: datetime) -> Any:
    return or_(
        and_(Step.state.in_(("pending", "waiting")), Step.not_before.is_not(None), Step.not_before <= now),
        and_(Step.state == "running", Step.lease_until < now),
    )


def claim(
    db: Database,
    worker: str,
    now: datetime,
    limit: int = 1,
    *,
    lease_seconds: float = LEASE_SECONDS,
    run_id: int | None = None,
) -> list[Claimed]:
    """Take up to `limit` due steps (in plan order) for `worker` until `now + lease_seconds`."""
    until = now + timedelta(seconds=lease_seconds)
    query = select(Step).where(due(now)).order_by(Step.run_id, Step.position)
    if run_id is not None:
        query = query.where(Step.run_id == run_id)
    if db.is_sqlite:
        return _claim_sqlite(db, worker, now, until, query, limit)
    with db.unit_of_work() as s:
        rows = _ready(s, s.scalars(query.limit(limit).with_for_update(skip_locked=True)).all())
        claimed = []
        for row in rows:
            row.state, row.lease_owner, row.lease_until = "running", worker, until
            row.attempts += 1
            claimed.append(_started(s, row, worker, now))
        return claimed


def _claim_sqlite(db: Database, worker: str, now: datetime, until: datetime, query: Any, limit: int) -> list[Claimed]:
    with db.reader() as s:
        candidates = [row.id for row in _ready(s, s.scalars(query.limit(limit * 4)).all())]
    claimed: list[Claimed] = []
    for step_id in candidates:
        if len(claimed) >= limit:
            break
        with db.unit_of_work() as s:
            taken = s.execute(
                update(Step)
                .where(Step.id == step_id, due(now))
                .values(state="running", lease_owner=worker, lease_until=until, attempts=Step.attempts + 1)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another worker was faster
            row = s.get(Step, step_id)
            assert row is not None
            claimed.append(_started(s, row, worker, now))
    return claimed


def _ready(s: Session, rows: Any) -> list[OffboardingStep]:
    """The rows whose dependencies are all done or skipped (always so for a due step; checked anyway)."""
    rows = list(rows)
    if not rows:
        return []
    states: dict[int, dict[str, str]] = defaultdict(dict)
    for run_id, key, state in s.execute(
        select(Step.run_id, Step.key, Step.state).where(Step.run_id.in_({r.run_id for r in rows}))
    ):
        states[run_id][key] = state
    return [r for r in rows if all(states[r.run_id].get(d) in TERMINAL for d in r.depends_on)]


def _started(s: Session, row: OffboardingStep, worker: str, now: datetime) -> Claimed:
    """Record the attempt; an attempt a dead worker left open is closed as `lost`."""
    for lost in s.scalars(select(StepAttempt).where(StepAttempt.step_id == row.id, StepAttempt.outcome.is_(None))):
        lost.outcome, lost.finished_at = "lost", now
        lost.error = f"worker {lost.worker} stopped before finishing (its lease ended); taken over by {worker}"[:2000]
    attempt = StepAttempt(step_id=row.id, worker=worker, started_at=now, calls=[])
    s.add(attempt)
    s.flush()
    return Claimed(
        id=row.id,
        run_id=row.run_id,
        key=row.key,
        kind=row.kind,
        action=row.action,
        title=row.title,
        target=dict(row.target or {}),
        instructions=row.instructions,
        seconds=row.seconds,
        attempts=row.attempts,
        idempotency_key=row.idempotency_key,
        attempt_id=attempt.id,
        worker=worker,
        lease_until=row.lease_until or now,
    )

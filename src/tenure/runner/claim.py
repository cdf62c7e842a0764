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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, and_, bindparam, insert, or_, select, update

from tenure.bulk import chunks
from tenure.db.engine import Database
from tenure.offboarding.flow import TERMINAL, mark_running
from tenure.offboarding.models import OffboardingStep, StepAttempt

LEASE_SECONDS = 120  # renewed while the step runs (runner.lease); a worker silent this long is taken for dead

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


def due(now: Any) -> Any:
    return or_(
        and_(Step.state.in_(("pending", "waiting")), Step.not_before.is_not(None), Step.not_before <= now),
        and_(Step.state == "running", Step.lease_until < now),
    )


# The statements of a claim, built once with parameters: a claim precedes every step, and building a
# statement costs SQLAlchemy several times what running it costs SQLite.
_DUE = (
    select(Step.id, Step.run_id, Step.depends_on)
    .where(due(bindparam("now")))
    .order_by(Step.run_id, Step.position)
    .limit(bindparam("limit", type_=Integer))
)
_DUE_IN_RUN = _DUE.where(Step.run_id == bindparam("run_id"))
_STATES = select(Step.key, Step.state).where(
    Step.run_id == bindparam("run_id"), Step.key.in_(bindparam("keys", expanding=True))
)
# what a claim reads back of the step it leased
CLAIMED = (
    Step.id,
    Step.run_id,
    Step.key,
    Step.kind,
    Step.action,
    Step.title,
    Step.target,
    Step.instructions,
    Step.seconds,
    Step.attempts,
    Step.idempotency_key,
    Step.lease_until,
)
_LEASE = update(Step).values(
    state="running", lease_owner=bindparam("worker"), lease_until=bindparam("until"), attempts=Step.attempts + 1
)
_TAKE_IF_DUE = _LEASE.where(Step.id == bindparam("step_id"), due(bindparam("now"))).returning(*CLAIMED)  # SQLite
_TAKE_LOCKED = _LEASE.where(Step.id.in_(bindparam("ids", expanding=True))).returning(*CLAIMED)  # PostgreSQL
_OPEN_ATTEMPTS = select(StepAttempt.id, StepAttempt.worker).where(
    StepAttempt.step_id == bindparam("step_id"), StepAttempt.outcome.is_(None)
)
_LOST = (
    update(StepAttempt)
    .where(StepAttempt.id == bindparam("attempt_id"))
    .values(outcome="lost", finished_at=bindparam("now"), error=bindparam("why"))
)
_ATTEMPT = (
    insert(StepAttempt)
    .values(step_id=bindparam("step_id"), worker=bindparam("worker"), started_at=bindparam("now"), calls=[])
    .returning(StepAttempt.id)
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
    lease = {"worker": worker, "until": now + timedelta(seconds=lease_seconds)}
    query, params = (_DUE, {"now": now}) if run_id is None else (_DUE_IN_RUN, {"now": now, "run_id": run_id})
    if db.is_sqlite:
        claimed: list[Claimed] = []
        with db.engine.begin() as connection:  # the driver begins the transaction at the first UPDATE
            for row in _ready(connection, connection.execute(query, params | {"limit": limit * 4}).all()):
                if len(claimed) >= limit:
                    break
                taken = connection.execute(_TAKE_IF_DUE, lease | {"step_id": row.id, "now": now}).first()
                if taken is not None:  # else another worker was faster
                    claimed.append(_started(connection, taken, worker, now))
            mark_running(connection, {c.run_id for c in claimed})
        return claimed
    with db.engine.begin() as connection:
        locked = connection.execute(query.with_for_update(skip_locked=True), params | {"limit": limit})
        ids = [row.id for row in _ready(connection, locked.all())]
        if not ids:
            return []
        leased = sorted(connection.execute(_TAKE_LOCKED, lease | {"ids": ids}), key=lambda row: ids.index(row.id))
        started = [_started(connection, row, worker, now) for row in leased]
        mark_running(connection, {c.run_id for c in started})
        return started


def _ready(connection: Connection, rows: Sequence[Any]) -> list[Any]:
    """The rows whose dependencies are all done or skipped (always so for a due step; checked anyway).
    Only the dependencies' states are read, not the whole run's."""
    states: dict[tuple[int, str], str] = {}
    for run_id in {row.run_id for row in rows}:
        keys = sorted({key for row in rows if row.run_id == run_id for key in row.depends_on})
        for some in chunks(keys):
            for key, state in connection.execute(_STATES, {"run_id": run_id, "keys": list(some)}):
                states[(run_id, key)] = state
    return [r for r in rows if all(states.get((r.run_id, d)) in TERMINAL for d in r.depends_on)]


def _started(connection: Connection, row: Any, worker: str, now: datetime) -> Claimed:
    """Record the attempt on the step just leased; an attempt a dead worker left open is closed as `lost`."""
    for lost_id, lost_worker in connection.execute(_OPEN_ATTEMPTS, {"step_id": row.id}).all():
        why = f"worker {lost_worker} stopped before finishing (its lease ended); taken over by {worker}"
        connection.execute(_LOST, {"attempt_id": lost_id, "now": now, "why": why[:2000]})
    attempt_id = connection.execute(_ATTEMPT, {"step_id": row.id, "worker": worker, "now": now}).scalar_one()
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
        attempt_id=attempt_id,
        worker=worker,
        lease_until=row.lease_until or now,
    )

"""The durable step executor: claim due steps, run each once, record every attempt, retry with backoff.

Steps are rows (`offboarding_step`); nothing but open vendor connections is held in memory between steps,
so a process can die at any moment and another (or the same command run again) carries on:

1. `claim` takes a due step under a lease and opens a `StepAttempt` (one transaction);
2. the executor does the work outside any transaction, passing the step's idempotency key to every vendor
   write; after each vendor call the calls so far are saved on the attempt; the lease is renewed for as
   long as the step runs (`tenure.runner.lease`);
3. one transaction then closes the attempt, moves the step on (only if this worker still holds the lease)
   and lets the flow promote the steps that became ready (`settle`).

A step whose attempt completed is never run again: its outcome and the step's new state commit together.
A step whose worker died mid-way is run again when its lease ends, with the same idempotency key, so a
vendor that honours the key applies the write once, and a write already applied answers "already gone".

Outcomes: `done`; `manual` (a person does it: the step waits with instructions); `retry` (not yet, or a
transient failure: the step waits `backoff * 2^(attempts-1)` seconds, capped; after `max_attempts` it is
`failed` with the reason); `failed` (a person must act first). A wait holds no thread: it is a `not_before`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from sqlalchemy import Update, bindparam, update

from tenure import clock
from tenure.connectors.base import CallLog, ConnectorError, NotSupported
from tenure.connectors.http import HttpClients
from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.offboarding.models import OffboardingStep, StepAttempt
from tenure.runner.claim import LEASE_SECONDS, Claimed, claim, worker_id
from tenure.runner.lease import HELD, Lease

Kind = Literal["done", "retry", "failed", "manual"]


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    instructions: str | None = None  # manual: what the person does
    give_up: str | None = None  # retry: what to say when the attempts run out

    @classmethod
    def done(cls, result: dict[str, Any] | None = None) -> Outcome:
        return cls("done", dict(result or {}))

    @classmethod
    def retry(cls, error: str, result: dict[str, Any] | None = None, give_up: str | None = None) -> Outcome:
        return cls("retry", dict(result or {}), error=error, give_up=give_up)

    @classmethod
    def failed(cls, error: str, result: dict[str, Any] | None = None) -> Outcome:
        return cls("failed", dict(result or {}), error=error)

    @classmethod
    def manual(cls, instructions: str, result: dict[str, Any] | None = None) -> Outcome:
        return cls("manual", dict(result or {}), instructions=instructions)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 60.0
    backoff_cap_seconds: float = 3600.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.backoff_seconds * 2 ** max(attempts - 1, 0), self.backoff_cap_seconds))


@dataclass
class StepContext:
    db: Database
    step: Claimed
    worker: str
    now: datetime
    calls: CallLog
    http: HttpClients  # the runner's, shared by its steps' connectors

    @property
    def key(self) -> str:
        """The idempotency key every vendor write of this step carries."""
        return self.step.idempotency_key


# Run after every vendor call or step: built once (building a statement costs SQLAlchemy more than running
# it costs SQLite). The parameter names differ from the columns' (SQLAlchemy keeps those for SET).
_SAVE_CALLS = update(StepAttempt).where(StepAttempt.id == bindparam("attempt_id")).values(calls=bindparam("made"))
_CLOSE_ATTEMPT = (
    update(StepAttempt)
    .where(StepAttempt.id == bindparam("attempt_id"))
    .values(
        finished_at=bindparam("now"), outcome=bindparam("outcome_"), error=bindparam("error_"), calls=bindparam("made")
    )
)


@cache
def _move(columns: tuple[str, ...]) -> Update:
    """The step's move out of `running` setting these columns (each kind of outcome sets its own few)."""
    return update(OffboardingStep).where(*HELD).values({name: bindparam(f"new_{name}") for name in columns})


Execute = Callable[[StepContext], Outcome]
# (session, run id, now, finished=keys): promote the steps that the steps `finished` (done just now) made
# ready, and update the run
Settle = Callable[..., Any]


class Runner:
    def __init__(
        self,
        db: Database,
        execute: Execute,
        settle: Settle,
        *,
        worker: str | None = None,
        policy: RetryPolicy | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.db = db
        self._execute = execute
        self._settle = settle
        self.worker = worker or worker_id()
        self.policy = policy or RetryPolicy()
        self.lease_seconds = lease_seconds
        self.http = HttpClients()  # vendor connections kept from step to step; closed when idle

    def run_once(self, run_id: int | None = None, limit: int = 1) -> int:
        """Claim up to `limit` due steps and run them; how many were run."""
        claimed = claim(self.db, self.worker, clock.now(), limit, lease_seconds=self.lease_seconds, run_id=run_id)
        for step in claimed:
            self.run_step(step)
        return len(claimed)

    def run_until_idle(self, run_id: int | None = None, limit: int = 1, max_steps: int = 100_000) -> int:
        """Run due steps until none is due (the rest wait on a person, the clock, or another worker)."""
        total = 0
        try:
            while total < max_steps:
                ran = self.run_once(run_id, limit)
                if not ran:
                    break
                total += ran
        finally:
            self.http.close()  # idle: no connection is kept open until the next round
        return total

    def run_step(self, step: Claimed) -> Outcome:
        lease = Lease(self.db, step.id, self.worker, self.lease_seconds, step.lease_until)
        calls = CallLog(step=step.key, on_call=lambda made: self._heartbeat(step, made, lease))
        if step.attempts > self.policy.max_attempts:  # its workers kept dying on it
            outcome = Outcome.failed(f"gave up after {step.attempts - 1} attempts, the last without a result")
        else:
            context = StepContext(self.db, step, self.worker, clock.now(), calls, self.http)
            try:
                with lease.kept():  # however long the step takes without a vendor call
                    outcome = self._execute(context)
            except NotSupported as exc:
                outcome = Outcome.manual(exc.instructions, {"detail": str(exc)})
            except ConnectorError as exc:
                outcome = Outcome.retry(str(exc)) if exc.retryable else Outcome.failed(str(exc))
            except TenureError as exc:
                outcome = Outcome.failed(str(exc))
            except (KeyboardInterrupt, SystemExit):
                self._release(step, calls.calls)
                raise
            except Exception as exc:  # a bug or a lost database: try again later, say what happened
                outcome = Outcome.retry(f"{type(exc).__name__}: {exc}")
        self._finish(step, outcome, calls.calls)
        return outcome

    # -------------------------------------------------------------------------------------- recording

    def _heartbeat(self, step: Claimed, made: list[dict[str, Any]], lease: Lease) -> None:
        """After each vendor call: put the calls made so far on record (committed before the next call), and
        renew the lease once half of it has gone (tenure.runner.lease). Plain UPDATEs on a connection:
        nothing for the ORM to track."""
        with self.db.engine.begin() as connection:
            connection.execute(_SAVE_CALLS, {"attempt_id": step.attempt_id, "made": list(made)})
            lease.renew_if_half_gone(connection, clock.now())

    def _values(self, step: Claimed, outcome: Outcome, now: datetime) -> tuple[dict[str, Any], str, str | None]:
        """The step's new columns, the attempt's outcome and its error."""
        base: dict[str, Any] = {"lease_owner": None, "lease_until": None}
        result = dict(outcome.result)
        if outcome.kind == "done":
            return (
                base | {"state": "done", "result": result, "done_at": now, "done_by": f"worker {self.worker}"},
                "done",
                None,
            )
        if outcome.kind == "manual":
            values = base | {"state": "waiting", "not_before": None, "result": result}
            if outcome.instructions:
                values["instructions"] = outcome.instructions
            return values, "waiting", None
        error = outcome.error or "failed"
        if outcome.kind == "retry" and step.attempts < self.policy.max_attempts:
            wait = self.policy.delay(step.attempts)
            result["error"] = error
            result["next_try"] = (now + wait).isoformat()
            return base | {"state": "waiting", "not_before": now + wait, "result": result}, "retry", error
        if outcome.kind == "retry":
            error = f"gave up after {step.attempts} attempts: {error}" + (
                f". {outcome.give_up}" if outcome.give_up else ""
            )
        result["error"] = error
        return base | {"state": "failed", "result": result}, "failed", error

    def _finish(self, step: Claimed, outcome: Outcome, calls: list[dict[str, Any]]) -> None:
        now = clock.now()
        values, attempt_outcome, error = self._values(step, outcome, now)
        with self.db.unit_of_work() as s:
            connection = s.connection()  # plain UPDATEs in the session's transaction: no object to track
            moved = connection.execute(
                _move(tuple(sorted(values))),
                {"step_id": step.id, "worker": self.worker} | {f"new_{name}": value for name, value in values.items()},
            )
            if moved.rowcount != 1:
                attempt_outcome = "lost"
                error = "this worker's lease ended before it finished; another worker took the step over"
            connection.execute(
                _CLOSE_ATTEMPT,
                {
                    "attempt_id": step.attempt_id,
                    "now": now,
                    "outcome_": attempt_outcome,
                    "error_": error[:2000] if error else None,
                    "made": list(calls),
                },
            )
            if attempt_outcome != "lost":
                self._settle(s, step.run_id, now, finished=(step.key,) if outcome.kind == "done" else ())

    def _release(self, step: Claimed, calls: list[dict[str, Any]]) -> None:
        """Interrupted (Ctrl-C): hand the step back at once instead of waiting for the lease to end."""
        now = clock.now()
        with self.db.unit_of_work() as s:
            s.execute(
                update(OffboardingStep)
                .where(OffboardingStep.id == step.id, OffboardingStep.lease_owner == self.worker)
                .values(state="pending", not_before=now, lease_owner=None, lease_until=None)
            )
            s.execute(
                update(StepAttempt)
                .where(StepAttempt.id == step.attempt_id)
                .values(finished_at=now, outcome="stopped", error="interrupted", calls=list(calls))
            )
            self._settle(s, step.run_id, now, finished=())  # the run is no longer running

"""Holding a step's lease for as long as its worker is alive and working on it.

A lease says "this worker is on it, until then"; a worker that stays silent past it is taken for dead and
its step is run again by another. So a live worker must renew it however its step spends the time:

- after each vendor call, once half of the lease has gone (in the product's clock, so a rehearsal that
  moves the clock with `--now` keeps its lease too);
- and, whatever the step does, from a thread that renews it every third of a lease (in real time) until
  the step returns: a `restic copy` of a large repository makes no vendor call for up to an hour, and
  must not be copied a second time by another worker meanwhile.

A renewal only touches a step that is still `running` under this worker: a step already taken over is
never taken back, and its attempt is closed as `lost` when its worker finishes.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, update

from tenure import clock
from tenure.db.engine import Database
from tenure.offboarding.models import OffboardingStep

log = logging.getLogger(__name__)

HELD = (  # the step, still running under this worker's lease
    OffboardingStep.id == bindparam("step_id"),
    OffboardingStep.lease_owner == bindparam("worker"),
    OffboardingStep.state == "running",
)
_RENEW = update(OffboardingStep).where(*HELD).values(lease_until=bindparam("until"))


class Lease:
    """The lease this worker holds on the step it runs."""

    def __init__(self, db: Database, step_id: int, worker: str, seconds: float, until: datetime):
        self.db = db
        self.step_id = step_id
        self.worker = worker
        self.seconds = seconds
        self.until = until  # as far as this worker last wrote
        self._lock = threading.Lock()  # the keeper thread and a vendor call may renew at the same moment

    def renew_if_half_gone(self, connection: Connection, now: datetime) -> None:
        """After a vendor call, in the caller's transaction."""
        if self.until - now < timedelta(seconds=self.seconds / 2):
            self._renew(connection, now)

    def _renew(self, connection: Connection, now: datetime) -> None:
        # only the new time is worked out under the lock: the write may wait for the database, and the other
        # renewer may be holding it in its own transaction
        with self._lock:
            self.until = until = max(self.until, now + timedelta(seconds=self.seconds))
        connection.execute(_RENEW, {"step_id": self.step_id, "worker": self.worker, "until": until})

    def _renew_now(self) -> None:
        with self.db.engine.begin() as connection:
            self._renew(connection, clock.now())

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the lease every third of it while the block runs (see the module's docstring)."""
        stop = threading.Event()
        context = contextvars.copy_context()  # the step's clock: `--now` and tests move it

        def keep() -> None:
            while not stop.wait(self.seconds / 3):
                try:
                    context.run(self._renew_now)
                except Exception:  # a busy or lost database: the next round tries again
                    log.warning("could not renew the lease of step %s", self.step_id, exc_info=True)

        keeper = threading.Thread(target=keep, name=f"tenure-lease-{self.step_id}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()

"""Transaction locks: a second caller of the same work waits for the first, then sees what it committed.

PostgreSQL: `pg_advisory_xact_lock(namespace, key)`, released when the transaction ends. SQLite: the database's
write lock (a write that changes nothing begins the transaction and takes it), which covers every key at once.
Either way the lock must be the transaction's first statement, so what is read after it is what the previous
holder committed. Waiting longer than `lock_timeout` (settings, seconds) raises `Busy`.

A billing run reads every client at one moment and writes what follows from it much later (tenure.db.fanout). So
every change to what it reads (time, agreements, blocks, deposits, charges, clients, the MSP's settings) holds
the inputs lock shared before anything else (`hold` does so for every `change:` lock; `hold_inputs` for the
rest), and a run holds it alone (`hold_inputs_alone`): a change waits for a run under way, and a run for the
changes under way, so no change commits between what a run read and what it writes. Changes do not wait for
one another on it. SQLite's write lock already orders them all.
"""

from __future__ import annotations

import zlib

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tenure.db.engine import BUSY_TIMEOUT_MS
from tenure.errors import Busy
from tenure.settings import get_settings


def _namespace(name: str) -> int:
    """A stable 31-bit number per kind of lock (PostgreSQL's advisory locks take two int4 keys)."""
    return zlib.crc32(f"tenure:{name}".encode()) & 0x7FFFFFFF


INPUTS = "billing-inputs"  # what a billing run reads: held shared by changes, alone by a run


def hold(session: Session, name: str, key: int, what: str, timeout: float | None = None) -> None:
    """Wait (at most `timeout` seconds, default the setting) until this transaction holds lock (`name`, `key`);
    `what` words the error: `what` is busy. A `change:` lock holds the inputs lock (shared) first."""
    if name.startswith("change:") and session.connection().dialect.name == "postgresql":
        hold_inputs(session, timeout)  # (SQLite: the write lock taken next orders every change and run)
    seconds = _seconds(timeout)
    busy = f"{what} is busy: another one still holds its lock after {seconds:g} s of waiting"
    _acquire(session, _namespace(name), key, f"{busy}; try again once it has finished", seconds)


def hold_inputs(session: Session, timeout: float | None = None) -> None:
    """A change to what a billing run reads, beside other changes: waits while a run holds them alone."""
    seconds = _seconds(timeout)
    busy = f"a billing run is settling every client, and this change waited {seconds:g} s for it"
    _acquire(session, _namespace(INPUTS), 0, f"{busy}; try again once the run has finished", seconds, shared=True)


def hold_inputs_alone(session: Session, what: str, timeout: float | None = None) -> None:
    """No change to what a billing run reads commits until this transaction ends; waits for those under way."""
    seconds = _seconds(timeout)
    busy = f"{what} waited {seconds:g} s for changes under way to finish"
    _acquire(session, _namespace(INPUTS), 0, f"{busy}; try again once they have", seconds)


def _seconds(timeout: float | None) -> float:
    return get_settings().lock_timeout if timeout is None else timeout


def _acquire(session: Session, namespace: int, key: int, message: str, seconds: float, shared: bool = False) -> None:
    """Lock (`namespace`, `key`) for the rest of the transaction, waiting at most `seconds`; else `Busy(message)`."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        before = connection.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
        wait = f"{max(1, round(seconds * 1000))}ms"  # 0 would mean forever
        connection.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": wait})
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        try:
            connection.execute(
                text(f"SELECT {function}(CAST(:ns AS integer), CAST(:key AS integer))"),
                {"ns": namespace, "key": key},
            )
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available: lock_timeout expired
                raise Busy(message) from None
            raise
        connection.execute(text("SELECT set_config('lock_timeout', :before, true)"), {"before": before})
        return
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA busy_timeout={max(1, round(seconds * 1000))}")
        try:
            # a write that changes nothing: the driver begins the transaction and SQLite grants its write lock
            connection.exec_driver_sql("UPDATE msp_settings SET id = id WHERE 0")
        except OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise Busy(message) from None
            raise
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # the connection's own again

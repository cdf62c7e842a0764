"""Transaction locks: a second caller of the same work waits for the first, then sees what it committed.

PostgreSQL: `pg_advisory_xact_lock(namespace, key)`, released when the transaction ends. SQLite: the database's
write lock (a write that changes nothing begins the transaction and takes it), which covers every key at once.
Either way the lock must be the transaction's first statement, so what is read after it is what the previous
holder committed. Waiting longer than `lock_timeout` (settings, seconds) raises `Busy`.
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


def hold(session: Session, name: str, key: int, what: str, timeout: float | None = None) -> None:
    """Wait (at most `timeout` seconds, default the setting) until this transaction holds lock (`name`, `key`);
    `what` words the error: `what` is busy."""
    seconds = get_settings().lock_timeout if timeout is None else timeout
    connection = session.connection()
    message = (
        f"{what} is busy: another one still holds its lock after {seconds:g} s of waiting; "
        "try again once it has finished"
    )
    if connection.dialect.name == "postgresql":
        before = connection.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
        wait = f"{max(1, round(seconds * 1000))}ms"  # 0 would mean forever
        connection.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": wait})
        try:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(CAST(:ns AS integer), CAST(:key AS integer))"),
                {"ns": _namespace(name), "key": key},
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

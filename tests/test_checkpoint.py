"""SQLite's write-ahead log is copied back into the database by a thread of its own, never lost or left to grow."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from tenure.db.bulkwrite import insert_rows
from tenure.db.engine import Database
from tenure.notices.models import Notice


def _notices(prefix: str, n: int) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "client_id": None,
            "kind": "vendor",
            "dedupe_key": f"{prefix}{i}",
            "to": ["it@example.com"],
            "cc": [],
            "subject": "x" * 200,
            "body_text": "y" * 2000,
            "body_html": None,
            "data": {},
            "state": "waiting",
            "attempts": 0,
            "not_before": None,
            "created_at": now,
        }
        for i in range(n)
    ]


def _wal_state(path: str) -> tuple[int, int]:
    """(frames in the log, frames already copied into the database), read from another connection."""
    with sqlite3.connect(path) as other:
        _, log, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return log, copied


@pytest.fixture
def file_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'tenure.db'}")
    db.migrate()
    yield db
    db.engine.dispose()


def test_commits_leave_the_checkpoint_to_the_thread_and_it_runs(file_db, tmp_path):
    with file_db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    for batch in range(5):  # ~10 MB through the log, far past SQLite's own 1,000-page checkpoint
        with file_db.unit_of_work() as s:
            insert_rows(s.connection(), Notice.__table__, _notices(f"b{batch}-", 1000))
    file_db.settle()
    log, copied = _wal_state(str(tmp_path / "tenure.db"))
    assert log == copied  # everything committed is in the database file itself
    with sqlite3.connect(tmp_path / "tenure.db") as plain:  # and readable by any SQLite, not only through us
        assert plain.execute("SELECT COUNT(*) FROM notice").fetchone()[0] == 5000


def test_a_forked_process_checkpoints_its_own_commits(file_db, tmp_path):
    with file_db.unit_of_work() as s:  # the parent's thread exists before the fork
        insert_rows(s.connection(), Notice.__table__, _notices("parent-", 10))
    file_db.settle()
    file_db.engine.dispose()  # a forked child must not share the parent's pooled connections
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through its exit status)
        code = 1
        try:
            with file_db.unit_of_work() as s:
                insert_rows(s.connection(), Notice.__table__, _notices("child-", 1000))
            file_db.settle()
            log, copied = _wal_state(str(tmp_path / "tenure.db"))
            code = 0 if log == copied else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with file_db.reader() as s:
        assert s.scalar(select(func.count()).select_from(Notice)) == 1010


def test_a_database_in_memory_has_no_checkpointer():
    db = Database("sqlite://")
    assert db.checkpointer is None
    db.settle()  # nothing to wait for


def test_settle_runs_the_checkpoint_it_waits_for_without_the_pause_between_checkpoints(file_db, tmp_path):
    file_db.checkpointer.interval = 3600.0  # commits that keep coming are checkpointed an hour apart
    for batch in range(2):  # the second commit's checkpoint would wait out the hour
        with file_db.unit_of_work() as s:
            insert_rows(s.connection(), Notice.__table__, _notices(f"b{batch}-", 500))
    waiting = threading.Thread(target=file_db.settle, daemon=True)
    waiting.start()
    waiting.join(timeout=60)  # liveness, not speed: the old pause would hold it for the hour
    assert not waiting.is_alive()
    log, copied = _wal_state(str(tmp_path / "tenure.db"))
    assert log == copied

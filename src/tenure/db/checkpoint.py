"""SQLite's write-ahead log copied back into the database on a thread of its own, not inside a commit.

By default SQLite runs that copy (a checkpoint) inside the commit that takes the log past 1,000 pages: the
writer waits while every page it changed is written a second time and the file is synced. For an intake
batch that is a fifth of its time. Tenure's connections turn the automatic checkpoint off, and a checkpointer
thread per database file runs a PASSIVE checkpoint after commits instead; SQLite lets readers and writers go
on meanwhile, so the copy of one batch overlaps the next batch's parsing and matching on the other core.

Nothing about durability changes: a committed transaction is in the log either way, a checkpoint cut short
(a crash, the process ending) is finished by the next connection, and the last connection to close a
database checkpoints it as before. The thread is started by the first commit in a process (so a forked
process starts its own) and ends after a while with nothing to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref

_all: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


class Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` for one database file after commits, at most every `interval`
    seconds: commits that come while one runs are covered by the next."""

    def __init__(self, path: str, interval: float = 0.2, idle: float = 5.0):
        self.path = path
        self.interval = interval
        self.idle = idle
        self._cond = threading.Condition()
        self._wanted = False
        self._running = False
        self._waiting = 0  # callers in settle(): while there are any, checkpoints run without a pause
        self._thread: threading.Thread | None = None
        self._pid = 0
        _all.add(self)

    def _forked(self) -> None:
        # the child has no checkpointer thread, and a lock the parent's thread held would never be released
        self._cond = threading.Condition()
        self._wanted = self._running = False
        self._waiting = 0
        self._thread = None

    def committed(self) -> None:
        """A transaction ended: the log may have grown. Cheap; the checkpoint runs on the thread."""
        with self._cond:
            self._wanted = True
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name=f"checkpoint {self.path}", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def settle(self) -> None:
        """Wait until what was committed so far has been checkpointed (or the thread gave up on it). The checkpoint
        runs at once, not after the pause that spaces checkpoints out while commits keep coming."""
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                while (self._wanted or self._running) and self._thread is not None and self._thread.is_alive():
                    self._cond.wait(0.05)
            finally:
                self._waiting -= 1  # later commits are spaced out again

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, check_same_thread=False)
        last = 0.0
        try:
            while True:
                with self._cond:
                    if not self._cond.wait_for(lambda: self._wanted, timeout=self.idle):
                        self._thread = None
                        return
                    self._wanted, self._running = False, True
                    pause = last + self.interval - time.monotonic()
                    if pause > 0:
                        self._cond.wait_for(lambda: self._waiting > 0, timeout=pause)
                # another process checkpointing, or the file gone: the next commit tries again
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                last = time.monotonic()
                with self._cond:
                    self._running = False
                    self._cond.notify_all()
        finally:
            connection.close()
            with self._cond:
                self._running = False
                if self._thread is threading.current_thread():
                    self._thread = None
                self._cond.notify_all()


def _after_fork_in_child() -> None:
    for checkpointer in list(_all):
        checkpointer._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)

"""Read-only shards of a bulk job worked in processes of their own, on every core, each reading what the job read.

A billing run settles 5,000 clients one after another: it reads a million entries, allocates them, and
encodes what it freezes, all before it writes anything, and no client's part depends on another's. So the
clients are cut into shards, a few per process, and this process and child processes take them one at a
time from a shared counter (a child still starting, or a core running slow, takes fewer). A child reads
through a connection of its own and sends each result back pickled, from a thread of its own so that it works
its next shard meanwhile. Everything is written here, in the job's one transaction: `fan_out` hands over all
the results at the end, `results` each one as soon as it and those before it are in, so that this process
writes one while the children work the next ones (a shard's writes touch only its own clients' rows, and
every read of a shard is limited to its clients, so a shard read after others were written reads the same).

Every shard reads what the job reads. On SQLite the job already holds the database's write lock, so no one
can commit a change until it ends, and children see nothing the job has written yet. On PostgreSQL the job
exports its snapshot once it holds its lock (`pg_export_snapshot`) and every shard, this process's too,
reads at that snapshot. Every shard reads the clock at one moment, and a child acts as the job's actor.

The children are started fresh (multiprocessing's `spawn`), not forked: a fork copies a lock that another
thread holds at that instant (SQLite's own, held by a checkpointer thread mid-checkpoint) and the child then
waits on it forever. A fresh interpreter costs about a second of imports, spent while this process already
works shards, and works from any thread (a request of the web server). A child that raises sends its error
back to be raised here; a child that dies without a result is an error too; either way the others are
stopped. A child does not import the main module again (`_main_left_alone`): the work it does is in Tenure's
own modules, so a script that starts a job at its top level, unguarded, runs once.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.machinery
import multiprocessing
import os
import pickle
import queue
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from tenure import clock
from tenure.db.engine import Database, _file_of
from tenure.db.uow import actor, current_actor
from tenure.errors import TenureError

Shard = TypeVar("Shard")
Result = TypeVar("Result")

_SNAPSHOT = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?$")  # what pg_export_snapshot returns


MOST_PROCESSES = 8  # by default: each is a database connection, and the writing stays in one process


def processes(wanted: int, items: int, least_per_process: int) -> int:
    """How many processes to cut `items` across: at most `wanted` (0: one per core this process may use, at
    most MOST_PROCESSES), each with at least `least_per_process` items (a process's start and its pickled
    result cost more than a few items' work)."""
    wanted = wanted or min(_cores(), MOST_PROCESSES)
    if wanted <= 1:
        return 1
    return max(1, min(wanted, items // max(1, least_per_process)))


def cut(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """`items` in `parts` runs of consecutive items, as even as they come (their order kept across the runs)."""
    size, extra = divmod(len(items), parts)
    runs, start = [], 0
    for n in range(parts):
        end = start + size + (1 if n < extra else 0)
        runs.append(list(items[start:end]))
        start = end
    return runs


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # the cores this process may run on, not every core of the machine
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def fan_out(
    db: Database,
    session: Session,
    work: Callable[..., Result],
    shards: Sequence[Shard],
    *args: Any,
    processes: int = 2,
) -> list[Result]:
    """`work(session, shard, *args)` for each shard, the results in the order of the shards, in `processes`
    processes: this one (in `session`) and children reading what `session` reads. Each process takes the next
    shard not taken yet, so a child still starting, or a core slowed by another program, takes fewer: cut the
    work in a few shards per process. `work` must not write, and it and `args` must pickle (a function of a
    module, plain values)."""
    with results(db, session, work, shards, *args, processes=processes) as each:
        return list(each)


@contextmanager
def results(
    db: Database,
    session: Session,
    work: Callable[..., Result],
    shards: Sequence[Shard],
    *args: Any,
    processes: int = 2,
) -> Iterator[Iterator[Result]]:
    """As `fan_out`, but each result is handed over as soon as it and every one before it are in, in the order
    of the shards. The caller works on one (writes it, say) while the children work the next ones; this
    process works a shard itself whenever none is ready. Leaving the block early, or raising in it, stops
    the children."""
    each = _each(db, session, work, shards, args, processes)
    try:
        yield each
    finally:
        each.close()


def _each(
    db: Database,
    session: Session,
    work: Callable[..., Result],
    shards: Sequence[Shard],
    args: tuple[Any, ...],
    processes: int,
) -> Iterator[Result]:
    if len(shards) <= 1 or processes <= 1 or (db.is_sqlite and _file_of(db.engine) is None):
        for shard in shards:  # (a database in memory is this process's alone)
            yield work(session, shard, *args)
        return
    snapshot = _export_snapshot(session)
    moment = clock.now()  # every shard reads the clock at this moment, here and in the children
    spawn = multiprocessing.get_context("spawn")
    taken = spawn.Value("i", 0)  # how many shards have been taken, by any process
    owners = spawn.Array("i", len(shards), lock=False)  # which process took each (0: this one), under taken's lock
    inbox = _Inbox()
    children: list[tuple[BaseProcess, Connection, threading.Thread]] = []
    completed = False
    try:
        for number in range(1, min(processes, len(shards))):
            receive, send = spawn.Pipe(duplex=False)
            child = spawn.Process(
                target=_child,
                args=(send, taken, owners, number, db.url, snapshot, moment, current_actor(), work, shards, args),
                name="tenure-shard",
                daemon=True,
            )
            try:
                with _main_left_alone():
                    child.start()
            except BaseException:
                receive.close()
                raise
            finally:
                send.close()  # the child's end: when the child ends, reading finds the pipe closed
            # read as results come, so a child never waits on a full pipe while this process works a shard
            reader = threading.Thread(target=_receive, args=(child, receive, inbox, number), daemon=True)
            reader.start()
            children.append((child, receive, reader))
        with _reader_at(db, snapshot, session) as own:
            for index in range(len(shards)):
                while (outcome := inbox.ready(index, owners)) is None:
                    if (mine := _take(taken, owners, 0)) is None:
                        inbox.wait(index, owners)  # every shard is taken: a child is working this one
                        continue
                    with clock.held(moment):
                        done: tuple[bool, Any] = (True, work(own, shards[mine], *args))
                    inbox.put(mine, done)
                yield _result(outcome)  # the caller's turn: the children go on meanwhile
        completed = True
    finally:  # all handed over, or this process or a child raised, or the caller stopped early: none is left behind
        _stop_taking(taken)
        working = set(owners)
        for number, (process, pipe, reader) in enumerate(children, start=1):
            if number not in working:
                # a child still starting when every shard was taken is not waited for (nor stopped: it may be
                # inside `_take`, holding the lock); it finds nothing to take and ends, reaped on a thread of its own
                threading.Thread(target=_reap, args=(process, pipe, reader, taken, owners), daemon=True).start()
                continue
            if not completed and process.is_alive() and reader.is_alive():
                process.terminate()  # on the way out of an error, or of a caller that stopped early
            _reap(process, pipe, reader)


_starting = threading.Lock()  # one child starts at a time, whichever thread starts it


@contextmanager
def _main_left_alone() -> Iterator[None]:
    """While a child starts, the main module is named `__main__` to multiprocessing, which then leaves it alone
    in the child (as it does for `python -m package`). Otherwise a child imports the main script again, and a
    script that bills at its top level, with no `if __name__ == "__main__":`, would start the run again in
    every child, which then waits on the run's own lock. The work a child does is in Tenure's own modules."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _starting:
        spec = getattr(main, "__spec__", None)
        main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
        try:
            yield
        finally:
            main.__spec__ = spec


class _Inbox:
    """The shards' outcomes as they come in: from this process, and from each child's reader thread."""

    def __init__(self) -> None:
        self._outcomes: dict[int, tuple[bool, Any]] = {}  # by shard; -1: why a child could not read at all
        self._ended: set[int] = set()  # the children whose reader has read its last
        self._failed: tuple[bool, Any] | None = None  # the first shard that raised, wherever: the job fails
        self._changed = threading.Condition()

    def put(self, index: int, outcome: tuple[bool, Any]) -> None:
        with self._changed:
            if not outcome[0] and index >= 0 and self._failed is None:
                self._failed = outcome
            self._outcomes[index] = outcome
            self._changed.notify_all()

    def end(self, child: int) -> None:
        with self._changed:
            self._ended.add(child)
            self._changed.notify_all()

    def ready(self, index: int, owners: Any) -> tuple[bool, Any] | None:
        """Shard `index`'s outcome once it is in; the error, as soon as any shard raised; an error when the
        child that took it ended without sending it (why, when it said); None while it is still to come."""
        with self._changed:
            if self._failed is not None:
                return self._failed
            if index in self._outcomes:
                return self._outcomes.pop(index)
            if owners[index] in self._ended:  # (0 is this process, never in `_ended`)
                return self._outcomes.get(-1) or (False, TenureError(LOST))
            return None

    def wait(self, index: int, owners: Any) -> None:
        """Until shard `index`'s outcome is in, a shard failed, or the child working it ended."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._failed is not None or index in self._outcomes or owners[index] in self._ended
            )


LOST = "a process working a shard of this job ended without its result"


def _stop_taking(taken: Any) -> None:
    """No more shards are taken. The lock is waited for a while only: a child stopped inside `_take` (by a
    signal from outside) would hold it for good, and no one takes a shard once this has run anyway."""
    lock = taken.get_lock()
    held = lock.acquire(timeout=5)
    try:
        taken.get_obj().value = 1 << 30  # the number itself: `taken.value` would wait for the lock again
    finally:
        if held:
            lock.release()


def _reap(process: BaseProcess, pipe: Connection, reader: threading.Thread, *shared: Any) -> None:
    process.join()
    reader.join()
    pipe.close()


def _take(taken: Any, owners: Any, me: int) -> int | None:
    """The next shard no process has taken, now taken by process `me`; None when all are."""
    with taken.get_lock():
        index = int(taken.value)
        if index >= len(owners):
            return None
        taken.value = index + 1
        owners[index] = me
        return index


def _receive(child: BaseProcess, receive: Connection, inbox: _Inbox, number: int) -> None:
    """Each (shard, outcome) a child sends, until it says it is done or ends without saying so."""
    try:
        while True:
            try:
                message = receive.recv()
            except (EOFError, OSError):  # the child ended without saying it was done: what it had taken is lost
                child.join()
                return
            if message is None:
                return
            inbox.put(*message)
    finally:
        inbox.end(number)


def _result(outcome: tuple[bool, Any]) -> Any:
    ok, value = outcome
    if not ok:
        raise value
    return value


def _export_snapshot(session: Session) -> str | None:
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return None  # SQLite: the job holds the write lock, so what is committed is what it reads
    return str(connection.execute(text("SELECT pg_export_snapshot()")).scalar_one())


@contextmanager
def _reader_at(db: Database, snapshot: str | None, session: Session | None = None) -> Iterator[Session]:
    """A session reading at `snapshot` (PostgreSQL): a connection of its own. Without one, `session` when
    given (SQLite: the job's own, whose write lock keeps the database still), else a new reader."""
    if snapshot is None and session is not None:
        yield session
        return
    with db.reader() as session:
        if snapshot is not None:
            if not _SNAPSHOT.match(snapshot):  # made into SQL text below: only PostgreSQL's own form
                raise TenureError(f"not a snapshot id: {snapshot!r}")
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
        yield session


def _child(
    send: Connection,
    taken: Any,
    owners: Any,
    me: int,
    url: str,
    snapshot: str | None,
    moment: datetime,
    who: str,
    work: Callable[..., Result],
    shards: Sequence[Shard],
    args: tuple[Any, ...],
) -> None:
    """Take shards until none is left, sending (index, (True, result)) or (index, (False, error)) for each, then
    None. After an error no more are taken, here or elsewhere: the job fails."""
    gc.disable()  # a shard makes a few hundred thousand objects, all freed when the process ends
    clock.set_now(moment)
    actor.set(who)
    if taken.value >= len(shards):  # every shard taken while this process started: nothing to read
        send.send(None)
        return
    with contextlib.ExitStack() as stack:
        try:
            session = stack.enter_context(_reader_at(Database(url), snapshot))
        except Exception as exc:  # no shard can be worked here: why, should the job miss this child's shards
            send.send((-1, (False, _portable(exc))))
            send.send(None)
            return
        outbox = _Outbox(send)
        while (index := _take(taken, owners, me)) is not None:
            try:
                outcome: tuple[bool, Any] = (True, work(session, shards[index], *args))
            except BaseException as exc:  # handed to the parent, whatever it was
                outcome = (False, _portable(exc))
                with taken.get_lock():
                    taken.value = len(shards)
            outbox.put((index, outcome))
        outbox.close()
    send.send(None)
    send.close()


class _Outbox:
    """Results sent on a thread of their own, so this process works its next shard meanwhile. A result is
    megabytes, and the parent reads it on a thread that shares its interpreter with the shard the parent
    is working: sent from this process's main thread, each result left this process waiting a tenth of a
    second or more for the pipe to drain."""

    def __init__(self, send: Connection) -> None:
        self._send = send
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tenure-shard-results", daemon=True)
        self._thread.start()

    def put(self, message: Any) -> None:
        self._queue.put(bytes(ForkingPickler.dumps(message)))  # pickled here: what is queued cannot change

    def close(self) -> None:
        """Every result queued is sent before this returns."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                self._send.send_bytes(data)
            except OSError:  # the parent is gone: nothing will read the rest
                return


def _portable(exc: BaseException) -> BaseException:
    """The error itself when it survives pickling (a TenureError keeps its type), else its traceback's text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return TenureError("".join(traceback.format_exception(exc)).strip())

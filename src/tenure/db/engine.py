"""The engine for SQLite (embedded default, WAL) or PostgreSQL, and migrations applied on start."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tenure.db.checkpoint import Checkpointer
from tenure.errors import TenureError
from tenure.settings import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 10000  # how long a SQLite statement waits for another connection's write lock


# JSON columns without the spaces json.dumps puts after `,` and `:` (a first billing run freezes ~100 MB of
# portions); the encoder keeps no state between calls, so threads share it
_stdlib_json = json.JSONEncoder(separators=(",", ":")).encode


class JsonText(str):
    """A JSON column's value that is JSON text already, stored as it is: a billing run's frozen portions,
    written in the process that settled them (tenure.db.fanout), so they cross to the writing process as one
    string, not a hundred thousand small objects to pickle, and are not encoded there again."""


def _compact_json(value: Any) -> str:
    """A JSON column's text. orjson writes it several times faster than the standard library (an intake batch
    encodes every new ticket's change-log state, a billing run every client's frozen portions); what orjson
    will not write (an integer beyond 64 bits from a payload, say) the standard library writes as before, so
    nothing stored before is refused now. Non-ASCII text is stored as UTF-8 rather than escaped."""
    if type(value) is JsonText:
        return str.__str__(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return _stdlib_json(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.close()


def _no_auto_checkpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def _file_of(engine: Engine) -> str | None:
    """The database file of a SQLite engine; None in memory."""
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file::memory:") or "mode=memory" in name:
        return None
    return name


def _private(path: str) -> None:
    """The database readable by its owner only (0600, as the key file): the file is made before SQLite opens
    it, and SQLite gives its -wal and -shm files the database's mode. A file made world-readable by an older
    version loses what it grants others (what it grants its group is left as someone may have set it)."""
    if path.startswith("file:"):  # a URI filename: SQLite's business
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for name in (path, f"{path}-wal", f"{path}-shm"):
            try:
                mode = stat.S_IMODE(os.stat(name).st_mode)
                if mode & 0o007:
                    os.chmod(name, mode & ~0o007)
            except OSError:  # not there, or not ours to change
                pass
    except FileNotFoundError:  # SQLite would only say "unable to open database file"
        raise TenureError(
            f"the database {path} cannot be made: its directory {os.path.dirname(path) or '.'} does not exist "
            "(create it, or set TENURE_DATABASE_URL to a file in one that does)"
        ) from None
    except OSError:  # not ours to make there, say: SQLite says so when it opens the file
        return
    else:
        os.close(descriptor)


def make_engine(url: str) -> tuple[Engine, Checkpointer | None]:
    """The engine, and for a SQLite file the thread that checkpoints it (tenure.db.checkpoint)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, json_serializer=_compact_json)
        event.listen(engine, "connect", _sqlite_pragmas)
        path = _file_of(engine)
        if path is None:
            return engine, None
        _private(path)
        checkpointer = Checkpointer(path)
        event.listen(engine, "connect", _no_auto_checkpoint)
        event.listen(engine, "checkin", lambda *_: checkpointer.committed())
        return engine, checkpointer
    return create_engine(url, pool_pre_ping=True, json_serializer=_compact_json), None


def head_revision() -> str:
    """The newest migration revision, from the file names alone (`0016_intake_scale_out.py` is revision
    0016; revisions are numbered in order and each file's name starts with its number)."""
    return max(name.split("_", 1)[0] for name in os.listdir(MIGRATIONS / "versions") if name[:1].isdigit())


def alembic_config(connection: Any = None) -> Any:
    """Alembic's configuration of Tenure's migrations, working on `connection` when one is given. Alembic is
    imported here, when asked for: a command whose database is already at the head never loads it."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class Database:
    def __init__(self, url: str):
        import tenure.db.changelog  # noqa: F401  (the change log's flush hooks, whatever is written)

        self.url = url
        self.engine, self.checkpointer = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def settle(self) -> None:
        """Wait for the background checkpoint of what was committed so far (SQLite files; else nothing)."""
        if self.checkpointer is not None:
            self.checkpointer.settle()

    def at_head(self) -> bool:
        """Whether the database is already at the newest revision: one cheap query, so a command does not load
        Alembic (a quarter of a second) only to learn that there is nothing to do."""
        try:
            with self.engine.connect() as connection:
                stored = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        except DBAPIError:  # no table yet: a new database
            return False
        return stored == [head_revision()]

    def migrate(self) -> None:
        """Brought to the newest revision, if it is not there already. A command opens its database with the
        collector paused (tenure.cli.common.db); a migration rewrites whole tables through SQLAlchemy, whose
        objects hold cycles, so the collector runs while it does, or they would pile up until it ended."""
        if self.at_head():
            return
        from alembic import command

        from tenure.bulk import collector_running

        with collector_running(), self.engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Every table is known before anything is written: a flush orders its rows by their foreign keys, and
        resolves each one to its table, whichever feature that table belongs to. A read (`reader`) imports only
        the tables it queries (each models module imports what its relationships name): importing all 39 took a
        sixth of a read command's time."""
        import tenure.models  # noqa: F401

        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def reader(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session


_lock = threading.Lock()
_databases: dict[str, Database] = {}


def get_database(url: str | None = None) -> Database:
    """The process's database for `url` (default: from settings), migrated on first use."""
    url = url or get_settings().resolved_database_url()
    with _lock:
        database = _databases.get(url)
        if database is None:
            database = Database(url)
            database.migrate()
            _databases[url] = database
        return database


def reset_database_cache() -> None:
    with _lock:
        for database in _databases.values():
            database.engine.dispose()
        _databases.clear()

"""`tenure backup FILE` and `tenure restore FILE`.

- SQLite: SQLite's online backup API copies the live database page by page into FILE (a plain SQLite file)
  while Tenure keeps running; restore copies FILE back the same way, then brings the schema up to date.
- PostgreSQL: `pg_dump --format=custom` into FILE; restore is `pg_restore --clean --if-exists --no-owner
  --single-transaction` into the configured database, then migrations. The password, if the URL has one,
  goes to the tools through PGPASSWORD, never on their command line.

A backup written by a newer Tenure (a schema revision this one does not know) is refused on SQLite before
anything is overwritten.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory

from tenure.db.engine import Database, alembic_config
from tenure.errors import TenureError


def _known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _sqlite_path(db: Database) -> str:
    path = db.engine.url.database
    if not path or path == ":memory:":
        raise TenureError("this SQLite database lives in memory: there is nothing on disk to back up")
    return path


def _pg(db: Database) -> tuple[str, dict[str, str]]:
    url = db.engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return plain, env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise TenureError(f"{name} is not installed (it comes with the PostgreSQL client: postgresql-client)")
    return found


def backup(db: Database, target: Path) -> dict[str, Any]:
    """Copy the live database into `target`; what was written and how long it took."""
    target = target.expanduser()
    if target.is_dir():
        raise TenureError(f"{target} is a directory: name the backup file")
    target.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    if db.is_sqlite:
        source = _sqlite_path(db)
        partial = Path(tempfile.mkstemp(prefix=".tenure-backup-", dir=target.parent)[1])
        try:
            with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(partial)) as copy:
                live.backup(copy, pages=4096)
            partial.replace(target)  # a crash mid-way never leaves a half-written FILE
        finally:
            partial.unlink(missing_ok=True)
        engine = "sqlite"
    else:
        url, env = _pg(db)
        done = subprocess.run(
            [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target), "--dbname", url],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else str(done.returncode)
            raise TenureError(f"pg_dump failed: {last}")
        engine = "postgresql"
    return {
        "file": str(target),
        "engine": engine,
        "bytes": target.stat().st_size,
        "seconds": round(time.perf_counter() - began, 3),
    }


def _sqlite_revision(path: Path) -> str | None:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as backup_db:
            row = backup_db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise TenureError(f"{path} is not a Tenure SQLite backup ({exc})") from None
    return row[0] if row else None


def restore(db: Database, source: Path) -> dict[str, Any]:
    """Replace the database's content with the backup in `source`, then migrate it to this version."""
    source = source.expanduser()
    if not source.is_file():
        raise TenureError(f"{source}: no such backup file")
    began = time.perf_counter()
    if db.is_sqlite:
        revision = _sqlite_revision(source)
        if revision is None:
            raise TenureError(f"{source} has no schema revision: it is not a Tenure backup")
        if revision not in _known_revisions():
            raise TenureError(f"{source} was written by a newer Tenure (schema {revision}): upgrade Tenure first")
        target = _sqlite_path(db)
        db.engine.dispose()  # no pooled connection holds the old pages
        with closing(sqlite3.connect(source)) as backup_db, closing(sqlite3.connect(target, timeout=30)) as live:
            backup_db.backup(live, pages=4096)
        engine = "sqlite"
    else:
        url, env = _pg(db)
        db.engine.dispose()
        done = subprocess.run(
            [
                _tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--dbname",
                url,
                str(source),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else str(done.returncode)
            raise TenureError(f"pg_restore failed: {last}")
        engine = "postgresql"
    db.migrate()
    return {"file": str(source), "engine": engine, "seconds": round(time.perf_counter() - began, 3)}

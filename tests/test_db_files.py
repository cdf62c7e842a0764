"""The embedded database is its owner's only, as the key file is: the database, its -wal and -shm files
0600, the data directory 0700, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tenure.book.service import import_book
from tenure.db.engine import Database
from tenure.settings import Settings
from tests.books import small


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    """The usual umask of a shell (0022): files are world-readable unless made otherwise."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_a_new_database_and_its_log_are_readable_by_their_owner_only(tmp_path, open_umask):
    home = tmp_path / "home"
    url = Settings(home=home).resolved_database_url()
    assert mode(home) == 0o700
    database = Database(url)
    try:
        database.migrate()
        import_book(database, small())  # some writes: the write-ahead log and its index exist now
        with database.reader() as s:  # a reader holds them open while we look
            s.connection().exec_driver_sql("SELECT count(*) FROM client").scalar()
            files = {name: home / name for name in ("tenure.db", "tenure.db-wal", "tenure.db-shm")}
            assert {name: path.exists() for name, path in files.items()} == dict.fromkeys(files, True)
            assert {name: oct(mode(path)) for name, path in files.items()} == dict.fromkeys(files, "0o600")
    finally:
        database.engine.dispose()


def test_a_world_readable_database_of_before_is_closed_to_others(tmp_path, open_umask):
    path = tmp_path / "old.db"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    database.engine.dispose()
    path.chmod(0o644)
    again = Database(f"sqlite:///{path}")
    try:
        again.migrate()
        assert mode(path) & 0o007 == 0
    finally:
        again.engine.dispose()

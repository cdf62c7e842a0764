"""Test fixtures. The suite runs on SQLite; `scripts/test` runs the database tests again on PostgreSQL
by setting TENURE_TEST_DATABASE_URL. A PostgreSQL that cannot be reached then fails the run, never skips."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from tenure import clock
from tenure.db.engine import Database, reset_database_cache
from tests.support import empty as _empty

settings.register_profile("tenure", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tenure")

PG_URL = os.environ.get("TENURE_TEST_DATABASE_URL")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a test that touches the database is a `db` test: scripts/test runs those on PostgreSQL too
    for item in items:
        if "db" in getattr(item, "fixturenames", ()):
            item.add_marker("db")


def pytest_report_header() -> str:
    return f"tenure database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (embedded)'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        return PG_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'tenure.db'}"


@pytest.fixture(scope="session")
def _migrated(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    if not database.is_sqlite:
        try:
            with database.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        except Exception as exc:  # never a skip: the run was asked to prove PostgreSQL
            pytest.fail(f"PostgreSQL at {database_url} cannot be reached: {exc}", pytrace=False)
    database.migrate()
    yield database
    database.engine.dispose()


@pytest.fixture
def db(_migrated: Database) -> Iterator[Database]:
    """A migrated, empty database, emptied again after the test."""
    _empty(_migrated)
    clock.set_now(None)
    yield _migrated
    clock.set_now(None)
    reset_database_cache()
    _empty(_migrated)


@pytest.fixture
def cli(db: Database, tmp_path: Path) -> Any:
    """Run `tenure` as a subprocess against the test database, as a user would."""

    def run(
        *args: str, input: str | None = None, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
        environment |= {"TENURE_HOME": str(tmp_path / "home"), "TENURE_DATABASE_URL": db.url, "COLUMNS": "200"}
        environment |= env or {}
        result = subprocess.run(
            [sys.executable, "-m", "tenure", *args],
            input=input,
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"tenure {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    return run

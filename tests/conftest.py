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
from sqlalchemy import make_url, text

from tenure import clock
from tenure.db.engine import Database, reset_database_cache
from tenure.db.uow import actor
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


# a PostgreSQL run works in a schema of its own, so two runs against one server never see each other's rows
PG_SCHEMA = f"tenure_test_{os.getpid()}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:  # every connection, the `tenure` subprocesses' too, finds the tables in the run's own schema
        return make_url(PG_URL).update_query_dict({"options": f"-csearch_path={PG_SCHEMA}"}).render_as_string(False)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'tenure.db'}"


def _schema(database: Database, *statements: str) -> None:
    with database.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


@pytest.fixture(scope="session")
def _migrated(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    if not database.is_sqlite:
        try:
            _schema(database, f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE", f"CREATE SCHEMA {PG_SCHEMA}")
        except Exception as exc:  # never a skip: the run was asked to prove PostgreSQL
            pytest.fail(f"PostgreSQL at {PG_URL} cannot be reached: {exc}", pytrace=False)
    database.migrate()
    yield database
    if not database.is_sqlite:
        _schema(database, f"DROP SCHEMA {PG_SCHEMA} CASCADE")
    database.engine.dispose()


@pytest.fixture
def db(_migrated: Database) -> Iterator[Database]:
    """A migrated, empty database, emptied again after the test. Whoever acts is `system` again: a command
    run in process (typer's CliRunner) names its user as the actor of this process's changes from then on."""
    _empty(_migrated)
    clock.set_now(None)
    actor.set("system")
    yield _migrated
    clock.set_now(None)
    actor.set("system")
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

"""Helpers shared by tests."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from tenure.db.base import Base
from tenure.db.engine import Database


def empty(database: Database) -> None:
    # the count of changes to clients stays, as a migrated database has it: emptying the tables counts one more
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "facts_version"]
    with database.engine.begin() as connection:
        if database.is_sqlite:
            for name in tables:
                connection.execute(text(f'DELETE FROM "{name}"'))
        else:
            connection.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in tables) + " RESTART IDENTITY CASCADE"))


@contextmanager
def demo_on_file(path: Path, now: str = "2026-11-24T15:00:00Z") -> Iterator[Database]:
    """A SQLite file of its own holding the demo MSP at `now`, for a test that moves it between revisions."""
    from tenure import clock
    from tenure.book.demo import load_demo

    db = Database(f"sqlite:///{path}")
    db.migrate()
    clock.set_now(now)
    try:
        load_demo(db)
        yield db
    finally:
        clock.set_now(None)
        db.engine.dispose()


def migrate(db: Database, revision: str, how: str = "downgrade") -> None:
    """Alembic's `upgrade` or `downgrade` of `db` to `revision`, as an operator runs it."""
    from alembic import command

    from tenure.db.engine import alembic_config

    with db.engine.begin() as connection:
        getattr(command, how)(alembic_config(connection), revision)

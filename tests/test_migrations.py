"""The migrations describe exactly the models: a model change without its migration fails here."""

from alembic import command

from tenure.db.engine import alembic_config


def test_models_match_migrations(db):
    with db.engine.begin() as connection:
        command.check(alembic_config(connection))  # raises if autogenerate would find any difference


def test_a_database_at_the_newest_revision_is_known_without_alembic(db):
    # every command checks the schema by comparing one stored revision with the newest file's number: that
    # number must be the head Alembic itself would upgrade to, or a new migration would never be applied
    from alembic.script import ScriptDirectory

    from tenure.db.engine import head_revision

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert db.at_head()
    try:  # a database one revision behind is not taken for one at the head (and so is upgraded)
        with db.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
        assert not db.at_head()
    finally:
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{head_revision()}'")
    assert db.at_head()


def test_a_migration_runs_with_the_collector_on_even_when_a_command_paused_it(tmp_path, monkeypatch):
    # a command opens its database with the cyclic collector paused (tenure.cli.common.db); a migration that
    # rewrites a whole table makes objects with cycles, which would pile up until it ended
    import gc

    from tenure.bulk import collector_paused
    from tenure.db.engine import Database

    seen: list[bool] = []
    upgrade = command.upgrade
    monkeypatch.setattr(command, "upgrade", lambda *a, **k: (seen.append(gc.isenabled()), upgrade(*a, **k)))
    database = Database(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with collector_paused():
            database.migrate()
            assert not gc.isenabled()  # paused again for the rest of the command's start
        assert seen == [True]
        assert database.at_head()
    finally:
        database.engine.dispose()

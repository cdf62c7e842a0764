"""The migrations describe exactly the models: a model change without its migration fails here."""

from alembic import command
from alembic.config import Config

from tenure.db.engine import MIGRATIONS


def test_models_match_migrations(db):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.check(config)  # raises if autogenerate would find any difference

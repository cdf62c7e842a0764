"""Storage: engine, unit of work, base model, column types, change log, migrations."""

from tenure.db.base import Base, ChangeLogged
from tenure.db.engine import Database, get_database, reset_database_cache
from tenure.db.uow import actor, as_actor, current_actor

__all__ = [
    "Base",
    "ChangeLogged",
    "Database",
    "actor",
    "as_actor",
    "current_actor",
    "get_database",
    "reset_database_cache",
]

"""The declarative base and the marker for business objects whose changes are logged."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, MetaData, inspect
from sqlalchemy.orm import DeclarativeBase

from tenure.money import fmt

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, list[str]: JSON}


_AS_IS = frozenset({str, int, bool, float})


def plain(value: Any) -> Any:
    """A column value as JSON for the change log."""
    if value is None or type(value) in _AS_IS:  # most values: the bulk paths log thousands of rows
        return value
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return "<bytes>"
    return value


class ChangeLogged:
    """Mixin: every create, update and delete of this object is written to the change log.

    Columns named in `__changelog_redact__` are logged as "<redacted>" (secrets); those in
    `__changelog_exclude__` (values derived from other columns) are not logged. A model whose row keeps who
    made it and when sets `__changelog_creates__` False: its creation is told from the row itself
    (`tenure.book.history`), not written again as a log row.
    """

    __changelog_redact__: tuple[str, ...] = ()
    __changelog_exclude__: tuple[str, ...] = ()
    __changelog_creates__: bool = True

    def changelog_label(self) -> str:
        return str(getattr(self, "key", None) or getattr(self, "number", None) or getattr(self, "id", ""))

    def changelog_state(self) -> dict[str, Any]:
        mapper = inspect(type(self))
        state: dict[str, Any] = {}
        for column in mapper.column_attrs:
            name = column.key
            if name in self.__changelog_exclude__:
                continue
            value = getattr(self, name)
            state[name] = "<redacted>" if name in self.__changelog_redact__ and value else plain(value)
        return state

"""Inserts for the hot bulk paths (an intake batch): many rows in one driver `executemany`, ids known ahead.

SQLAlchemy's own executemany turns every row into parameters through its compiler machinery, about 10 µs a
row before the database sees it; on an intake batch (a payload, an alert, a ticket, its history and its
change-log row per alert) that alone would cost more than everything else. Here the statement is compiled
once per table, shape and dialect, each value goes through the column type's own bind processor (so a row
is stored exactly as the ORM would store it: UTC datetimes, cents, JSON), and the driver gets plain tuples.

Ids are reserved just before the insert (`insert_with_ids`) instead of read back after it: RETURNING in
parameter order is one statement per row on SQLite, and reading rows back needs an index per table.

On PostgreSQL the rows go in by `COPY ... FROM STDIN` (psycopg 3's copy): one stream per table instead of a
pipelined INSERT per row, which costs the server a parse-bind-execute and the driver a message per row; JSON
is encoded by the engine's serializer, as the ORM encodes it (`None` is JSON `null`, as the ORM stores it).
A driver error is raised as SQLAlchemy's wrapper of it, as an INSERT's would be.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Date, DateTime, LargeBinary, Table, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

from tenure.db.members import array_literal


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    keys: tuple[str, ...]  # the parameters, in the order the driver wants them
    processors: tuple[Callable[[], Callable[[Any], Any]] | None, ...]  # each makes a converter for one call
    positional: bool
    copy: str | None = None  # PostgreSQL: the COPY statement taking the same columns in the same order


_compiled: dict[tuple[str, str, tuple[str, ...]], _Statement] = {}


def _statement(table: Table, dialect: Dialect, columns: tuple[str, ...]) -> _Statement:
    cache_key = (dialect.name, table.name, columns)
    found = _compiled.get(cache_key)
    if found is None:
        # a column left out gets NULL or its server default here: one whose default is made in Python would
        # silently get NULL, so leaving it out is a mistake to say at once
        missing = [c.name for c in table.c if c.default is not None and c.name not in columns]
        if missing:
            raise ValueError(f"insert into {table.name}: give {', '.join(missing)} (defaults made in Python)")
        compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
        keys = tuple(compiled.positiontup or ()) if compiled.positional else columns
        copy = None
        if dialect.name == "postgresql":
            processors = tuple(_copy_processor(table.c[key].type, dialect) for key in keys)
            quoted = ", ".join(f'"{key}"' for key in keys)
            copy = f'COPY "{table.name}" ({quoted}) FROM STDIN'
        else:
            processors = tuple(_processor(table.c[key].type, dialect) for key in keys)
        found = _compiled[cache_key] = _Statement(compiled.string, keys, processors, compiled.positional, copy)
    return found


def _copy_processor(column_type: Any, dialect: Dialect) -> Callable[[], Callable[[Any], Any]] | None:
    """A value's converter for COPY: JSON as its text (the driver's own JSON wrapper is dumped row by row), and
    times and dates as their text, made once per distinct value: the driver formats a datetime anew for every
    row, which cost more than all the other values of an alert's row together. The text is the driver's own
    (`str` of the value, ISO 8601), so the server reads the same time either way."""
    if isinstance(column_type, JSON):
        serialize: Callable[[Any], str] = getattr(dialect, "_json_serializer", None) or json.dumps
        return lambda: serialize
    if column_type._type_affinity in (DateTime, Date):
        process = column_type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
        return lambda: _remembered(lambda value: None if value is None else str(process(value)))
    return _processor(column_type, dialect)


def _processor(column_type: Any, dialect: Dialect) -> Callable[[], Callable[[Any], Any]] | None:
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return None
    # bytes are too big to keep, and JSON is written (orjson, db/engine.py) faster than a memo's key is made;
    # the rest repeat across a batch (times, amounts, flags), so each distinct one is converted once per call
    if isinstance(column_type, LargeBinary | JSON):
        return lambda: process
    return lambda: _remembered(process)


def _remembered(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, run once per distinct value within one call of `insert_rows`."""
    done: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        if value not in done:
            done[value] = process(value)
        return done[value]

    return convert


def insert_rows(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], ids: Sequence[int] | None = None
) -> None:
    """Insert `rows` (dicts with the same keys, every one a column of `table`) in one executemany; `ids`, the
    primary key of each row, when they are given apart from the rows."""
    if not rows:
        return
    columns = tuple(rows[0]) if ids is None else ("id", *rows[0])
    statement = _statement(table, connection.dialect, columns)
    keys = [key for key in statement.keys if ids is None or key != "id"]
    pick = itemgetter(*keys)
    at_id = statement.keys.index("id") if ids is not None else -1
    # only the columns with a converter are touched again; a batch repeats the same few times and amounts,
    # so each distinct one is converted once per call
    converters = [(i, make()) for i, make in enumerate(statement.processors) if make is not None]
    values: list[Any] = []
    for n, row in enumerate(rows):
        picked = pick(row)
        value = list(picked) if len(keys) > 1 else [picked]
        if ids is not None:
            value.insert(at_id, ids[n])
        for i, convert in converters:
            value[i] = convert(value[i])
        values.append(tuple(value))
    if statement.copy is not None:
        copy_rows(connection, statement.copy, values)
        return
    if statement.positional:
        params: Sequence[Any] = values
    else:
        params = [dict(zip(statement.keys, value, strict=True)) for value in values]
    connection.exec_driver_sql(statement.sql, params)  # type: ignore[arg-type]


def copy_rows(connection: Connection, sql: str, values: Sequence[Sequence[Any]]) -> None:
    """Rows streamed by PostgreSQL's `COPY ... FROM STDIN` on this connection, in its transaction."""
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for value in values:
                copy.write_row(value)
    except driver.Error as exc:  # as SQLAlchemy raises a driver's error (OperationalError: try again later)
        raise DBAPIError.instance(sql, None, exc, type(driver).Error) from exc
    for listen in copy_listeners:
        listen(sql, values)


# called with (COPY statement, rows) after each copy: what bench/ records to replay the same writes
copy_listeners: list[Callable[[str, Sequence[Sequence[Any]]], None]] = []


def insert_with_ids(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """`insert_rows`, giving each row a fresh primary key; the keys, in the order of `rows`."""
    ids = _reserve_ids(connection, table, len(rows))
    insert_rows(connection, table, rows, ids)
    return ids


def _reserve_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """`count` fresh primary keys of `table`, for rows inserted right after (nothing may insert in between on
    this connection: on SQLite the reservation is only the largest id read).

    PostgreSQL: drawn from the column's sequence, so concurrent writers never collide. SQLite: the ids after
    the largest, read once this transaction holds the write lock, so no other writer can take them before
    this transaction commits.
    """
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        # one row holding every id as an array (a batch's 5,000 ids are not 5,000 rows for the driver to read),
        # in ascending order: rows keep their order in the ids, so payloads are processed in the order they came.
        # The sequence is looked up once, in a subquery: as nextval's argument alone, the catalog was read for
        # every id, two thirds of the statement's time.
        sequence = f"(SELECT pg_get_serial_sequence('{table.name}', 'id'))::regclass"
        query = text(
            "SELECT array_agg(id ORDER BY id) FROM "
            f"(SELECT nextval({sequence}) AS id FROM generate_series(1, :n)) AS ids"
        )
        return [int(i) for i in connection.execute(query, {"n": count}).scalar_one()]
    # a write that changes nothing: the driver begins the transaction and SQLite grants its write lock
    connection.exec_driver_sql(f"UPDATE {table.name} SET id = id WHERE 0")
    highest = connection.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table.name}")).scalar_one()
    return list(range(int(highest) + 1, int(highest) + 1 + count))


def update_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Set columns of existing rows, in one statement: each dict holds the row's `id` and the same columns, with
    the values they take. PostgreSQL: `UPDATE ... FROM unnest(arrays)`, each column's values sent as one
    array's text (converted as COPY converts them), where an UPDATE per row is a round of the pipeline each;
    SQLite: one driver executemany of plain tuples, converted as `insert_rows` converts them."""
    if not rows:
        return
    columns = tuple(c for c in rows[0] if c != "id")
    postgresql = connection.dialect.name == "postgresql"
    make_processor = _copy_processor if postgresql else _processor
    converted: list[list[Any]] = []
    for name in (*columns, "id"):
        make = make_processor(table.c[name].type, connection.dialect)
        values = [r[name] for r in rows]
        converted.append(values if make is None else list(map(make(), values)))
    sql = _update_sql(table, connection.dialect, columns)
    if postgresql:
        connection.execute(text(sql), {f"v{i}": array_literal(values) for i, values in enumerate(converted)})
    else:
        connection.exec_driver_sql(sql, list(zip(*converted, strict=True)))


_updates: dict[tuple[str, str, tuple[str, ...]], str] = {}


def _update_sql(table: Table, dialect: Dialect, columns: tuple[str, ...]) -> str:
    """The statement setting `columns` of rows by id, their values given column by column, the ids last.
    PostgreSQL: `UPDATE ... FROM unnest(...)`, one array per column; SQLite: `UPDATE ... WHERE id = ?`, run
    once per row by the driver's executemany."""
    found = _updates.get((dialect.name, table.name, columns))
    if found is None:
        if dialect.name == "postgresql":
            names = (*columns, "id")
            arrays = ", ".join(
                f"CAST(:v{i} AS {table.c[name].type.compile(dialect=dialect)}[])" for i, name in enumerate(names)
            )
            aliases = ", ".join(f'"{name}"' for name in names)
            sets = ", ".join(f'"{c}" = v."{c}"' for c in columns)
            found = f'UPDATE "{table.name}" AS t SET {sets} FROM unnest({arrays}) AS v({aliases}) WHERE t.id = v.id'
        else:
            sets = ", ".join(f'"{c}" = ?' for c in columns)
            found = f'UPDATE "{table.name}" SET {sets} WHERE id = ?'
        _updates[(dialect.name, table.name, columns)] = found
    return found

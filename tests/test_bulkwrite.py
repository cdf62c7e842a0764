"""Bulk inserts store exactly what the ORM stores, and reserved ids never collide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from tenure.db.bulkwrite import insert_rows, insert_with_ids
from tenure.db.members import one_of
from tenure.notices.models import Notice


def _notice(key: str, when: datetime) -> dict:
    return {
        "client_id": None,
        "kind": "vendor",
        "dedupe_key": key,
        "to": ["it@example.com"],
        "cc": [],
        "subject": "Hello",
        "body_text": "Text",
        "body_html": None,
        "data": {"amount": "12.50", "nested": {"a": [1, 2]}},
        "state": "waiting",
        "attempts": 0,
        "not_before": None,
        "created_at": when,
    }


def test_insert_rows_stores_what_the_orm_stores(db):
    when = datetime(2026, 11, 24, 16, 30, 5, 123456, tzinfo=UTC)
    local = when.astimezone(timezone(timedelta(hours=-5, minutes=-30)))  # the same moment, told elsewhere
    with db.unit_of_work() as s:
        s.add(Notice(**_notice("by-orm", when)))
        s.flush()
        insert_rows(s.connection(), Notice.__table__, [_notice("by-bulk", local), _notice("by-bulk-2", when)])
    with db.reader() as s:
        columns = [c for c in Notice.__table__.c if c.name not in ("id", "dedupe_key")]
        rows = {key: row for key, *row in s.execute(select(Notice.dedupe_key, *columns))}
    assert rows["by-bulk"] == rows["by-orm"] == rows["by-bulk-2"]
    assert rows["by-orm"][columns.index(Notice.__table__.c.created_at)] == when


def test_times_on_the_second_and_before_1970_are_stored_as_given(db):
    times = [datetime(2026, 12, 4, 9, 0, tzinfo=UTC), datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC)]
    with db.unit_of_work() as s:
        insert_rows(s.connection(), Notice.__table__, [_notice(f"t{i}", when) for i, when in enumerate(times)])
    with db.reader() as s:
        stored = {key: when for key, when in s.execute(select(Notice.dedupe_key, Notice.created_at))}
    assert [stored["t0"], stored["t1"]] == times


def test_json_values_that_compare_equal_keep_their_own_text(db):
    # True == 1 == 1.0 and key order must not fool the writer into storing one value's text for another
    when = datetime.now(UTC)
    datas = [{"n": 1}, {"n": True}, {"n": 1.0}, {"a": 1, "b": 2}, {"b": 2, "a": 1}, {"n": [1]}, {"n": 1}]
    rows = [_notice(f"j{i}", when) | {"data": data} for i, data in enumerate(datas)]
    with db.unit_of_work() as s:
        insert_rows(s.connection(), Notice.__table__, rows)
    with db.reader() as s:
        stored = dict(s.execute(select(Notice.dedupe_key, Notice.data)).all())
    for i, data in enumerate(datas):
        assert stored[f"j{i}"] == data and [type(v) for v in stored[f"j{i}"].values()] == [
            type(v) for v in data.values()
        ]
        assert list(stored[f"j{i}"]) == list(data)


def test_insert_rows_refuses_to_leave_out_a_default_made_in_python(db):
    row = _notice("short", datetime.now(UTC))
    del row["to"]  # `to` defaults to [] in Python: left out, it would be NULL
    with pytest.raises(ValueError, match="give to"), db.unit_of_work() as s:
        insert_rows(s.connection(), Notice.__table__, [row])


def test_rows_get_fresh_ids_that_nothing_else_takes(db):
    now = datetime.now(UTC)
    with db.unit_of_work() as s:
        first = insert_with_ids(s.connection(), Notice.__table__, [_notice(f"n{i}", now) for i in range(3)])
        s.add(Notice(**_notice("orm-after", now)))  # the ORM, in the same transaction, right after
        s.flush()
    with db.unit_of_work() as s:
        second = insert_with_ids(s.connection(), Notice.__table__, [_notice(f"m{i}", now) for i in range(2)])
    with db.reader() as s:
        ids = dict(s.execute(select(Notice.dedupe_key, Notice.id)).all())
    assert [ids[f"n{i}"] for i in range(3)] == first and [ids[f"m{i}"] for i in range(2)] == second
    assert len(set(first + second + [ids["orm-after"]])) == 6 and min(second) > max(first)


def test_concurrent_writers_never_share_an_id(db):
    if db.is_sqlite:
        # SQLite: the first writer holds the write lock until it commits, so a second one waits for it
        # (busy_timeout) and then numbers after what the first inserted
        return
    now = datetime.now(UTC)
    with db.engine.connect() as a, db.engine.connect() as b, a.begin(), b.begin():
        mine = insert_with_ids(a, Notice.__table__, [_notice(f"a{i}", now) for i in range(50)])
        theirs = insert_with_ids(b, Notice.__table__, [_notice(f"b{i}", now) for i in range(50)])
    assert not set(mine) & set(theirs)


def test_json_beyond_the_fast_encoder_is_stored_and_read_back_as_given(db):
    """What a payload may carry into a JSON column: an integer beyond 64 bits (which orjson refuses: the
    standard library writes it), integer keys (stored as text, as json.dumps does), text beyond ASCII."""
    when = datetime.now(UTC)
    data = {"big": 2**70, "text": "Zürich – 東京", 7: "seven", "nested": {"n": -(2**65), "f": 0.1}}
    with db.unit_of_work() as s:
        s.add(Notice(**_notice("by-orm", when) | {"data": data}))
        s.flush()
        insert_rows(s.connection(), Notice.__table__, [_notice("by-bulk", when) | {"data": data}])
    with db.reader() as s:
        stored = dict(s.execute(select(Notice.dedupe_key, Notice.data)).all())
    expected = {"big": 2**70, "text": "Zürich – 東京", "7": "seven", "nested": {"n": -(2**65), "f": 0.1}}
    assert stored["by-orm"] == stored["by-bulk"] == expected


# keys that an array's text must quote or escape to keep as they are
AWKWARD_KEYS = ['say "hi"', "back\\slash", "a,b", "{braced}", "NULL", " padded ", "", "déjà vu"]


def test_one_of_finds_exactly_the_listed_rows_beyond_any_parameter_limit(db):
    """A batch's lookup by thousands of ids or keys is one statement, and finds what IN (...) finds."""
    when = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)
    with db.unit_of_work() as s:
        ids = insert_with_ids(s.connection(), Notice.__table__, [_notice(f"n{i}", when) for i in range(40)])
        insert_rows(s.connection(), Notice.__table__, [_notice(key, when) for key in AWKWARD_KEYS])
    wanted_ids = [*ids[::3], 10**12]  # an id that no row has, beyond 32 bits
    many = wanted_ids + list(range(-40_000, 0))  # more values than SQLite binds in one statement
    with db.reader() as s:
        by_id = set(s.scalars(select(Notice.id).where(one_of(s, Notice.id, many))))
        by_key = set(s.scalars(select(Notice.dedupe_key).where(one_of(s, Notice.dedupe_key, ["n0", "n7", "N7", "x"]))))
        nothing = list(s.scalars(select(Notice.id).where(one_of(s, Notice.id, []))))
        awkward = set(s.scalars(select(Notice.dedupe_key).where(one_of(s, Notice.dedupe_key, AWKWARD_KEYS))))
    assert by_id == set(ids[::3])
    assert awkward == set(AWKWARD_KEYS)  # quotes, backslashes, commas, braces and NULL are values like any
    assert by_key == {"n0", "n7"}  # compared as stored: no case folding
    assert nothing == []

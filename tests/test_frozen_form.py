"""What an invoice froze reads back exactly as it was allocated, in the column-by-column form and from rows
written before it (migration 0016 turns those into it, and back on downgrade)."""

import importlib.util
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tenure.agreements.frozen import decode_portions, encode_portions, frozen_keys
from tenure.agreements.rules import Portion
from tenure.db.engine import MIGRATIONS

money = st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False, allow_infinity=False)
portions = st.lists(
    st.builds(
        Portion,
        work_key=st.text("tw0123456789-", min_size=1, max_size=8),
        date=st.integers(0, 400).map(lambda n: date(2025, 10, 1) + timedelta(days=n)),
        layer=st.sampled_from(["included", "block", "retainer", "billable"]),
        minutes=st.integers(0, 600),
        block_key=st.none() | st.sampled_from(["b1", "b2"]),
        agreement_key=st.none() | st.sampled_from(["c1-managed", "c1-retainer"]),
        rate=st.none() | money,
        line_kind=st.none() | st.sampled_from(["overage", "hourly", "retainer"]),
        amount=money | st.just(Decimal(150) * 7 / 60),  # an unrounded billable amount
    ),
    max_size=40,
)


@given(portions)
def test_frozen_portions_read_back_as_allocated(frozen):
    stored = encode_portions(frozen)
    assert decode_portions(stored) == frozen
    assert frozen_keys(stored) == [p.work_key for p in frozen]


def _migration():
    spec = importlib.util.spec_from_file_location("m0016", MIGRATIONS / "versions" / "0016_intake_scale_out.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_frozen_before_migration_0016_read_the_same_after_it():
    before = [  # as billing runs wrote them until 0016: one list per portion
        ["t1", "2026-10-03", "billable", 90, None, None, "150.00", "hourly", "225.00"],
        ["t2", "2026-10-03", "included", 60, None, "c1-managed", None, None, "0"],
        ["t3", "2026-10-11", "retainer", 45, None, "c1-retainer", "120.00", None, "90.00"],
        ["t3", "2026-10-11", "billable", 15, None, "c1-retainer", "120.00", "retainer", "30.00"],
    ]
    migration = _migration()
    after = migration._columns(before)
    assert decode_portions(after) == decode_portions(before)  # the old form is still read as it was
    assert decode_portions(after)[2] == Portion(
        "t3", date(2026, 10, 11), "retainer", 45, None, "c1-retainer", Decimal("120.00"), None, Decimal("90.00")
    )
    assert frozen_keys(after) == frozen_keys(before) == ["t1", "t2", "t3", "t3"]
    assert migration._lists(after) == before  # downgrade gives back exactly what was there

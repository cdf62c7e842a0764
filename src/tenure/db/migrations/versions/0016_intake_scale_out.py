"""intake's whole path at scale

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 22:15:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
    _billing_upgrade()


def downgrade() -> None:
    pass
    _billing_downgrade()


# ----------------------------------------------------------------------------------------------------------
# billing (issue 21, item 5): frozen allocations' portions column by column (tenure.agreements.frozen), no
# longer one JSON list per portion. Self-contained: the stored strings are moved as they are, never parsed.

_FROZEN = sa.table("frozen_allocation", sa.column("id", sa.Integer), sa.column("portions", sa.JSON))
_CODED = ("date", "layer", "block", "agreement", "rate", "line_kind", "amount")  # positions 1, 2, 4..8


def _billing_rows(compact: bool) -> None:
    connection = op.get_bind()
    for row_id, portions in connection.execute(sa.select(_FROZEN.c.id, _FROZEN.c.portions)).all():
        if portions and isinstance(portions, list) == compact:
            converted = _columns(portions) if compact else _lists(portions)
            connection.execute(_FROZEN.update().where(_FROZEN.c.id == row_id).values(portions=converted))


def _columns(rows: list) -> dict:
    stored = {"key": [r[0] for r in rows], "minutes": [r[3] for r in rows]}
    for name, at in zip(_CODED, (1, 2, 4, 5, 6, 7, 8), strict=True):
        column = [r[at] for r in rows]
        values = list(dict.fromkeys(column))
        position = {v: i for i, v in enumerate(values)}
        stored[name] = [values] if len(values) == 1 else [values, [position[v] for v in column]]
    return stored


def _lists(stored: dict) -> list:
    n = len(stored["key"])
    columns = {}
    for name in _CODED:
        values, *index = stored[name]
        columns[name] = [values[i] for i in index[0]] if index else values * n
    return [
        [stored["key"][i], columns["date"][i], columns["layer"][i], stored["minutes"][i], columns["block"][i],
         columns["agreement"][i], columns["rate"][i], columns["line_kind"][i], columns["amount"][i]]
        for i in range(n)
    ]


def _billing_upgrade() -> None:
    _billing_rows(compact=True)


def _billing_downgrade() -> None:
    _billing_rows(compact=False)

"""offboarding steps know their dependants

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 04:00:00

After a step finishes, only the steps that depend on it can become ready. Without the reverse of
`depends_on` stored, every finish read every pending step of the run: a 2,000-device run's worker spent
minutes re-reading thousands of steps after each of its ten thousand steps. Each step now lists its
dependants; the run's state is read through an index on (run_id, state) instead of counting every step.
"""

from collections import defaultdict

from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

_STEP = sa.table(
    "offboarding_step",
    sa.column("id", sa.Integer),
    sa.column("run_id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("depends_on", sa.JSON),
    sa.column("dependants", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("offboarding_step") as batch:
        batch.add_column(sa.Column("dependants", sa.JSON(), nullable=False, server_default="[]"))
    op.create_index("ix_step_run_state", "offboarding_step", ["run_id", "state"])
    connection = op.get_bind()
    dependants: dict[tuple[int, str], list[str]] = defaultdict(list)
    for run_id, key, depends_on in connection.execute(
        sa.select(_STEP.c.run_id, _STEP.c.key, _STEP.c.depends_on).order_by(_STEP.c.id)
    ):
        for needed in depends_on or []:
            dependants[(run_id, needed)].append(key)
    for (run_id, key), keys in dependants.items():
        connection.execute(
            _STEP.update().where(_STEP.c.run_id == run_id, _STEP.c.key == key).values(dependants=keys)
        )


def downgrade() -> None:
    op.drop_index("ix_step_run_state", table_name="offboarding_step")
    with op.batch_alter_table("offboarding_step") as batch:
        batch.drop_column("dependants")

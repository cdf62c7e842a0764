"""offboarding a person can finish: owner, assignees, not_before, closeout

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 22:15:00
"""

from alembic import op
import sqlalchemy as sa

from tenure.db.types import UTCDateTime


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- issue 19, items 1-3 and 5: a run's owner, a step's assignee, and when a step may end a paid service
    op.add_column("offboarding_run", sa.Column("owner", sa.String(200), nullable=True))
    op.add_column("offboarding_step", sa.Column("assignee", sa.String(200), nullable=True))
    op.add_column("offboarding_step", sa.Column("held_until", UTCDateTime(), nullable=True))
    # --- end of items 1-3 and 5


def downgrade() -> None:
    # --- issue 19, items 1-3 and 5
    op.drop_column("offboarding_step", "held_until")
    op.drop_column("offboarding_step", "assignee")
    op.drop_column("offboarding_run", "owner")
    # --- end of items 1-3 and 5

"""a payload some of whose alerts matched no client waits for them alone

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 04:30:00

An Alertmanager group with one unknown host among known ones was marked processed: the unknown host's alert
was decided `quarantine` and then kept nowhere a replay could find it. Such a payload now waits in
quarantine too, with `placed` listing the fingerprints already recorded, which a replay leaves alone.
"""

from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raw_payload") as batch:
        batch.add_column(sa.Column("placed", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raw_payload") as batch:
        batch.drop_column("placed")

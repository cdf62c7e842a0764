"""clients: archived, not deleted

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 16:45:00

A client with any history is archived (`archived_at`), never deleted: its invoices, time and change log stay
explained. Lists leave archived clients out unless asked.
"""

from alembic import op
import sqlalchemy as sa

from tenure.db.types import UTCDateTime


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


# plain ALTER TABLE on both engines (SQLite has had ADD and DROP COLUMN since 3.35): a batch operation would
# copy the `client` table, and with foreign keys on, dropping the old copy deletes every row that refers to it


def upgrade() -> None:
    op.add_column('client', sa.Column('archived_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column('client', 'archived_at')

"""open alerts: the dedupe index holds only firing alerts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:30:00

Intake looks up a batch's open alerts by (client, fingerprint) with `status = 'firing'`. Indexing only those
rows keeps the index as small as the open work, so a batch of new alerts changes a few pages of it instead of
one page per alert across every alert ever seen (the write-ahead log and the checkpoint copy each such page).
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

FIRING = sa.text("status = 'firing'")


def upgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_open')
        batch_op.create_index('ix_alert_open', ['client_id', 'fingerprint'], unique=False,
                              sqlite_where=FIRING, postgresql_where=FIRING)


def downgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_open')
        batch_op.create_index('ix_alert_open', ['client_id', 'fingerprint', 'status'], unique=False)

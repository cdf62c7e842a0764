"""a ticket keeps who opened it; its creation is no longer a change-log row

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 09:00:00

Intake opens a ticket for nearly every new alert, and each one wrote a change-log row holding the ticket's
whole state again, with an entry in the log's client index: a fifth of the rows a storm writes. The ticket's
own row already holds that state and when it was opened; with `opened_by` it holds who opened it too, and the
history tells the creation from the row (`tenure.book.history`). Tickets opened before keep their logged
creation, and `opened_by` stays empty on them: the history tells them apart by it.
"""

import sqlalchemy as sa
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ticket", sa.Column("opened_by", sa.String(length=200), nullable=True))  # no table rebuild


def downgrade() -> None:
    # the creations told from the row are written to the log first, so that none is lost with the column
    op.execute(
        "INSERT INTO object_change (time, actor, action, object_type, object_id, object_label, client_id) "
        "SELECT opened_at, opened_by, 'create', 'ticket', id, substr('#' || id || ' ' || title, 1, 200), client_id "
        "FROM ticket WHERE opened_by IS NOT NULL"
    )
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("opened_by")

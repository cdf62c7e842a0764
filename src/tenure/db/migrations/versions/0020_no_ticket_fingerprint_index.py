"""the ticket table loses an index no query reads

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 07:45:00

`ix_ticket_fingerprint` (fingerprint, status) dates from the first data model, when a repeat looked for its
open ticket by fingerprint. Repeats have long been found by their open alert (`ix_alert_open`), whose row
holds the ticket's id, and nothing else looks tickets up by fingerprint: every ticket intake opened and every
status change wrote an index entry no reader used.
"""

from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_ticket_fingerprint", table_name="ticket")  # a plain DROP INDEX: the table is not rebuilt


def downgrade() -> None:
    op.create_index("ix_ticket_fingerprint", "ticket", ["fingerprint", "status"], unique=False)

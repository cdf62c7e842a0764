"""an alert's ticket and payload, and a history row's alert, referenced without a foreign key

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 13:00:00

PostgreSQL checks a foreign key with a query per inserted row (its referential-integrity trigger reads and
locks the parent): the COPY of a storm's 5,000 new alerts took 178 ms, 114 ms without these checks. Neither
is ever deleted (a ticket is closed, a payload kept for replay), intake writes them in
the alert's own transaction, and alerts are never deleted either, so these checks could never fail and
their ON DELETE actions never ran. The client's key keeps its foreign key: a client can be deleted (one
without history), and the key is what guards that. SQLite rebuilds the two tables, as it must to drop a
constraint.
"""

import sqlalchemy as sa
from alembic import op


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

# (table, constraint, column, referred table, on delete)
DROPPED = (
    ("alert", "fk_alert_ticket_id_ticket", "ticket_id", "ticket", "SET NULL"),
    ("alert", "fk_alert_raw_payload_id_raw_payload", "raw_payload_id", "raw_payload", "SET NULL"),
    ("alert_history", "fk_alert_history_alert_id_alert", "alert_id", "alert", "CASCADE"),
)
FIRING = sa.text("status = 'firing'")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # the history first: SQLite rebuilds a table by dropping it, and dropping `alert` while the history's key
    # still cascaded from it would delete every history row
    for table in ("alert_history", "alert"):
        with op.batch_alter_table(table) as batch:
            for _, name, *_ in (d for d in DROPPED if d[0] == table):
                batch.drop_constraint(name, type_="foreignkey")
    if sqlite:
        _partial_open_index()


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("alert", "alert_history"):  # the alert first, for the same reason
        with op.batch_alter_table(table) as batch:
            for _, name, column, referred, on_delete in (d for d in DROPPED if d[0] == table):
                batch.create_foreign_key(name, referred, [column], ["id"], ondelete=on_delete)
    if sqlite:
        _partial_open_index()


def _partial_open_index() -> None:
    """The rebuilt table's dedupe index as migration 0008 made it, holding firing alerts only (a rebuild that
    read the index back without its WHERE would index every alert ever seen)."""
    op.execute("DROP INDEX IF EXISTS ix_alert_open")
    op.create_index("ix_alert_open", "alert", ["client_id", "fingerprint"], sqlite_where=FIRING)

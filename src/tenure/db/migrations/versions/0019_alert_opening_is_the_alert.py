"""an alert's opening is the alert row itself: its history holds only what changed after

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 07:00:00

Every new alert wrote a history row (first seen, `firing`, its decision) that repeated the alert's own
`first_seen`, `status` at creation and `decision`, which never changes: one row and one index entry per alert
that said nothing new, on intake's hottest path. `Alert.timeline` gives the opening from the alert row; the
rows removed here are exactly those openings (nothing else writes `firing`: an alert that fires again after
a resolve is a new alert).
"""

from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM alert_history WHERE status = 'firing'")


def downgrade() -> None:
    op.execute(
        "INSERT INTO alert_history (alert_id, time, status, note) "
        "SELECT id, first_seen, 'firing', decision FROM alert"
    )

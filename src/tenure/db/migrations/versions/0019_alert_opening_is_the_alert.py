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
    # each alert's opening goes back as its first history row. The history is read in id order, so the rows
    # are numbered again, each alert's opening before what changed after it (appended after the rows already
    # there, an opening would come after its own resolve)
    op.execute("CREATE TABLE alert_history_0019 AS SELECT id, alert_id, time, status, note FROM alert_history")
    op.execute("DELETE FROM alert_history")
    op.execute(
        "INSERT INTO alert_history (alert_id, time, status, note) "
        "SELECT alert_id, time, status, note FROM ("
        "SELECT id AS alert_id, first_seen AS time, 'firing' AS status, decision AS note, 0 AS later, 0 AS n "
        "FROM alert "
        "UNION ALL SELECT alert_id, time, status, note, 1, id FROM alert_history_0019"
        ") AS h ORDER BY alert_id, later, n"
    )
    op.execute("DROP TABLE alert_history_0019")

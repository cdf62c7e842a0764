"""calendar feeds that can be revoked; the hand-over password out of an account's details

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 12:00:00

`calendar_feed` keeps a generation per client and per technician: calendar URLs carry it, and rotating it
makes every earlier URL answer 404. `vendor_account.handover_secret` takes the sealed hand-over password that
`details` held, so the details (which the book carries) never hold a secret.
"""

from alembic import op
import sqlalchemy as sa
import tenure.db.types


revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

ACCOUNTS = sa.table(
    "vendor_account",
    sa.column("id", sa.Integer()),
    sa.column("details", sa.JSON()),
    sa.column("handover_secret", sa.LargeBinary()),
)


def upgrade() -> None:
    op.create_table(
        "calendar_feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("rotated_at", tenure.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feed")),
        sa.UniqueConstraint("subject_kind", "subject", name=op.f("uq_calendar_feed_subject_kind_subject")),
    )
    with op.batch_alter_table("vendor_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handover_secret", sa.LargeBinary(), nullable=True))

    connection = op.get_bind()
    for account_id, details in connection.execute(sa.select(ACCOUNTS.c.id, ACCOUNTS.c.details)).all():
        sealed = (details or {}).get("handover_secret")
        if sealed is None:
            continue
        kept = {k: v for k, v in details.items() if k != "handover_secret"}
        connection.execute(
            ACCOUNTS.update()
            .where(ACCOUNTS.c.id == account_id)
            .values(details=kept, handover_secret=sealed.encode() if isinstance(sealed, str) else sealed)
        )


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(ACCOUNTS.c.id, ACCOUNTS.c.details, ACCOUNTS.c.handover_secret).where(
            ACCOUNTS.c.handover_secret.is_not(None)
        )
    ).all()
    for account_id, details, sealed in rows:
        connection.execute(
            ACCOUNTS.update()
            .where(ACCOUNTS.c.id == account_id)
            .values(details={**(details or {}), "handover_secret": bytes(sealed).decode()})
        )
    with op.batch_alter_table("vendor_account", schema=None) as batch_op:
        batch_op.drop_column("handover_secret")

    op.drop_table("calendar_feed")

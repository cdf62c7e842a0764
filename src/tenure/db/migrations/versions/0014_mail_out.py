"""invoices that leave: sent, reminders, statements

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 22:15:00

`invoice_mail` records each time an invoice was mailed (on issue, again on request, a reminder at so many
days past due: once each); `msp_settings.reminder_days` (default [1, 7, 14]) says when reminders go.
"""

from alembic import op
import sqlalchemy as sa
import tenure.db.types


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.Column("recorded_at", tenure.db.types.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoice.id"], name=op.f("fk_invoice_mail_invoice_id_invoice"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notice.id"], name=op.f("fk_invoice_mail_notice_id_notice"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_mail")),
        sa.UniqueConstraint("invoice_id", "kind", "days", name=op.f("uq_invoice_mail_invoice_id_kind_days")),
    )
    op.create_index(op.f("ix_invoice_mail_invoice_id"), "invoice_mail", ["invoice_id"], unique=False)
    op.add_column(
        "msp_settings",
        sa.Column("reminder_days", sa.JSON(), nullable=False, server_default=sa.text("'[1, 7, 14]'")),
    )


def downgrade() -> None:
    op.drop_column("msp_settings", "reminder_days")
    op.drop_index(op.f("ix_invoice_mail_invoice_id"), table_name="invoice_mail")
    op.drop_table("invoice_mail")

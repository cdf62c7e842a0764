"""time corrections, charges and agreement terms

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:00:00

- time entries are edited and voided in place: `voided_at`, `void_reason`, `edit_reason`, and `revision`, bumped
  by every change of what pays the entry; a frozen allocation keeps the revision it settled (`revisions`), so
  a correction of invoiced work is billed once, on the next invoice, as an `adjustment` line;
- `charge`: parts, materials and one-off charges, billed in arrears on the next monthly invoice, once;
- agreements: `renewal` (auto | ends) at the end of each `term_months`, and `billing_interval_months` (1, 3,
  12); the MSP's `term_notice_days` before a term ends.
"""

from alembic import op
import sqlalchemy as sa

import tenure.db.types


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('time_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voided_at', tenure.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('void_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('edit_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=False, server_default=sa.text('0')))

    with op.batch_alter_table('frozen_allocation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revisions', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))

    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('renewal', sa.String(length=10), nullable=False, server_default='auto'))
        batch_op.add_column(
            sa.Column('billing_interval_months', sa.Integer(), nullable=False, server_default=sa.text('1'))
        )

    with op.batch_alter_table('msp_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('term_notice_days', sa.Integer(), nullable=False, server_default=sa.text('60')))

    op.create_table('charge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('quantity', tenure.db.types.DecimalText(), nullable=True),
    sa.Column('amount', tenure.db.types.Money(), nullable=False),
    sa.Column('cost', tenure.db.types.Money(), nullable=True),
    sa.Column('voided_at', tenure.db.types.UTCDateTime(), nullable=True),
    sa.Column('void_reason', sa.String(length=500), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('credit_invoice_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_charge_client_id_client'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['credit_invoice_id'], ['invoice.id'], name=op.f('fk_charge_credit_invoice_id_invoice'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], name=op.f('fk_charge_invoice_id_invoice'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charge')),
    sa.UniqueConstraint('client_id', 'key', name=op.f('uq_charge_client_id_key'))
    )
    with op.batch_alter_table('charge', schema=None) as batch_op:
        batch_op.create_index('ix_charge_client_date', ['client_id', 'date'], unique=False)
        batch_op.create_index(batch_op.f('ix_charge_invoice_id'), ['invoice_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('charge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_charge_invoice_id'))
        batch_op.drop_index('ix_charge_client_date')

    op.drop_table('charge')
    with op.batch_alter_table('msp_settings', schema=None) as batch_op:
        batch_op.drop_column('term_notice_days')

    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.drop_column('billing_interval_months')
        batch_op.drop_column('renewal')

    with op.batch_alter_table('frozen_allocation', schema=None) as batch_op:
        batch_op.drop_column('revisions')

    with op.batch_alter_table('time_entry', schema=None) as batch_op:
        batch_op.drop_column('revision')
        batch_op.drop_column('edit_reason')
        batch_op.drop_column('void_reason')
        batch_op.drop_column('voided_at')

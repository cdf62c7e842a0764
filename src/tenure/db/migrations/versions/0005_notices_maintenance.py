"""notices and proactive maintenance: the outbox's Message-ID, task technicians, decisions' answers and
prices, and one row per handled occurrence of a task (tickets once per occurrence)

Revision ID: 0005
Revises: 0003 (0004 when the offboarding runner's migration is there)
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa
import tenure.db.types


revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('maintenance_occurrence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('due_at', tenure.db.types.UTCDateTime(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('created_at', tenure.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_maintenance_occurrence_client_id_client'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['maintenance_task.id'], name=op.f('fk_maintenance_occurrence_task_id_maintenance_task'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_maintenance_occurrence_ticket_id_ticket'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_occurrence')),
    sa.UniqueConstraint('client_id', 'task_id', 'due_at', name=op.f('uq_maintenance_occurrence_client_id_task_id_due_at'))
    )
    with op.batch_alter_table('maintenance_decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('price', tenure.db.types.Money(), nullable=True))
        batch_op.add_column(sa.Column('answered_at', tenure.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=1000), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_maintenance_decision_notice_id_notice'), 'notice', ['notice_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('maintenance_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('technician', sa.String(length=100), nullable=True))

    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.String(length=200), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_column('message_id')

    with op.batch_alter_table('maintenance_task', schema=None) as batch_op:
        batch_op.drop_column('technician')

    with op.batch_alter_table('maintenance_decision', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_maintenance_decision_notice_id_notice'), type_='foreignkey')
        batch_op.drop_column('note')
        batch_op.drop_column('answered_at')
        batch_op.drop_column('price')
        batch_op.drop_column('minutes')
        batch_op.drop_column('notice_id')

    op.drop_table('maintenance_occurrence')

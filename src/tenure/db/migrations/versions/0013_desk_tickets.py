"""tickets people work: kinds, priorities, statuses, assignee, notes, targets; time against a ticket

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 22:15:00

- `ticket`: device, description, priority (P1-P4), assignee (a user), the response and resolution due times
  of the MSP's targets, when it was first answered and resolved; indexes for the queue's filters;
- statuses and kinds move to the service desk's vocabulary: open -> new, handed_over -> closed (the hand-over is
  said in a note), kind quote -> alert (it stays billable and awaiting approval), offboarding -> project;
- `ticket_note`: notes, internal or public, append-only;
- `time_entry.ticket_id` gets an index (a ticket's minutes); `maintenance_occurrence.done_at`;
- `msp_settings.ticket_targets`: response and resolution targets per agreement kind and priority.
"""

from alembic import op
import sqlalchemy as sa

from tenure.db.types import UTCDateTime


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


# plain ALTER TABLE on both engines (see 0012): a batch operation would copy `ticket`, and with foreign keys on,
# dropping the old copy deletes every row that refers to it

STATUSES = {"open": "new", "handed_over": "closed"}
KINDS = {"quote": "alert", "offboarding": "project"}


def upgrade() -> None:
    # device and assignee without a foreign key: SQLite can only add one inline, unnamed, which the models'
    # named constraints would never match (see triage.models)
    op.add_column('ticket', sa.Column('device_id', sa.Integer(), nullable=True))
    op.add_column('ticket', sa.Column('description', sa.Text(), nullable=True))
    op.add_column('ticket', sa.Column('priority', sa.String(length=2), nullable=False, server_default='P3'))
    op.add_column('ticket', sa.Column('assignee_id', sa.Integer(), nullable=True))
    op.add_column('ticket', sa.Column('respond_by', UTCDateTime(), nullable=True))
    op.add_column('ticket', sa.Column('due_at', UTCDateTime(), nullable=True))
    op.add_column('ticket', sa.Column('responded_at', UTCDateTime(), nullable=True))
    op.add_column('ticket', sa.Column('resolved_at', UTCDateTime(), nullable=True))
    ticket = sa.table('ticket', sa.column('status', sa.String()), sa.column('kind', sa.String()))
    for old, new in STATUSES.items():
        op.execute(ticket.update().where(ticket.c.status == old).values(status=new))
    for old, new in KINDS.items():
        op.execute(ticket.update().where(ticket.c.kind == old).values(kind=new))
    op.create_index('ix_ticket_status_id', 'ticket', ['status', 'id'], unique=False)
    op.create_index('ix_ticket_assignee_status_id', 'ticket', ['assignee_id', 'status', 'id'], unique=False)
    op.create_index('ix_ticket_priority_status_id', 'ticket', ['priority', 'status', 'id'], unique=False)
    op.create_index('ix_ticket_status_due', 'ticket', ['status', 'due_at'], unique=False)

    op.create_table('ticket_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('at', UTCDateTime(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_ticket_note_ticket_id_ticket'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_note'))
    )
    op.create_index('ix_ticket_note_ticket_at', 'ticket_note', ['ticket_id', 'at'], unique=False)

    op.create_index('ix_time_entry_ticket_id', 'time_entry', ['ticket_id'], unique=False)
    op.add_column('maintenance_occurrence', sa.Column('done_at', UTCDateTime(), nullable=True))
    op.add_column('msp_settings', sa.Column('ticket_targets', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    op.drop_column('msp_settings', 'ticket_targets')
    op.drop_column('maintenance_occurrence', 'done_at')
    op.drop_index('ix_time_entry_ticket_id', table_name='time_entry')
    op.drop_index('ix_ticket_note_ticket_at', table_name='ticket_note')
    op.drop_table('ticket_note')
    for name in ('ix_ticket_status_due', 'ix_ticket_priority_status_id', 'ix_ticket_assignee_status_id',
                 'ix_ticket_status_id'):
        op.drop_index(name, table_name='ticket')
    ticket = sa.table('ticket', sa.column('status', sa.String()))
    op.execute(ticket.update().where(ticket.c.status.in_(['new', 'in_progress', 'waiting_on_client', 'resolved']))
               .values(status='open'))
    for column in ('resolved_at', 'responded_at', 'due_at', 'respond_by', 'assignee_id', 'priority', 'description',
                   'device_id'):
        op.drop_column('ticket', column)

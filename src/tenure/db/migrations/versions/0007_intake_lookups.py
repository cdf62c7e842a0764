"""intake lookups: a device's host key, open alerts by client and fingerprint

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 10:40:00

Intake matches a batch's hostnames by `device.host_key` (lower-case, without the domain) through an index,
instead of reading every device; and finds a batch's open alerts by (client, fingerprint), where a
fingerprint alone can be shared by many clients' alerts.
"""

from alembic import op
import sqlalchemy as sa

from tenure.clients.rules import host_key


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host_key', sa.String(length=200), nullable=False, server_default=''))
    connection = op.get_bind()
    device = sa.table('device', sa.column('id', sa.Integer), sa.column('hostname', sa.String),
                      sa.column('host_key', sa.String))
    rows = [{"did": did, "hk": host_key(hostname)} for did, hostname in connection.execute(
        sa.select(device.c.id, device.c.hostname))]
    if rows:
        connection.execute(device.update().where(device.c.id == sa.bindparam('did'))
                           .values(host_key=sa.bindparam('hk')), rows)
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.create_index('ix_device_host_key', ['host_key'], unique=False)
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_fingerprint_open')
        batch_op.create_index('ix_alert_open', ['client_id', 'fingerprint', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_open')
        batch_op.create_index('ix_alert_fingerprint_open', ['fingerprint', 'status'], unique=False)
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_index('ix_device_host_key')
        batch_op.drop_column('host_key')

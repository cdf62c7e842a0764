"""a counted version of what triage reads of clients, kept by triggers

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 16:00:00

Every intake batch read every client, then the agreements, contacts and offboarding of the clients it
matched: a tenth of a storm's time, to learn again what had not changed. Intake now keeps what it read
between batches (`tenure.intake.matching`) while `facts_version.version` stays the same, and triggers
count every change to those five tables, whoever makes it (a page, the API, a command, a book, an operator
at the database's prompt).

SQLite: a trigger per table and statement kind, each adding one (one writer at a time: no contention).
PostgreSQL: a deferred constraint trigger per table, so the count's row is written at commit, once per
transaction (a setting local to the transaction remembers it), as the transaction's last act: it holds
that row's lock only while it commits, and waits on nothing while it holds it, so two transactions cannot
deadlock on it. TRUNCATE, which fires no row trigger, counts through a statement trigger of its own.

A table rebuilt by a later SQLite migration (`batch_alter_table`) loses its triggers: intake checks that
they are all in place before it keeps anything (`tenure.intake.matching.facts_counted`), so a lost trigger
costs speed, never a stale decision, and `tests/test_facts_version.py` fails on it.
"""

import uuid

import sqlalchemy as sa
from alembic import op


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

FACT_TABLES = ("client", "agreement", "contact", "mapping_rule", "offboarding_run")
KINDS = ("insert", "update", "delete")

_PG_FUNCTION = """
CREATE FUNCTION tenure_facts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('tenure.facts_counted', true) IS DISTINCT FROM txid_current()::text THEN
        PERFORM set_config('tenure.facts_counted', txid_current()::text, true);
        UPDATE facts_version SET version = version + 1;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "facts_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facts_version")),
    )
    op.execute(
        sa.text("INSERT INTO facts_version (id, instance, version) VALUES (1, :instance, 0)").bindparams(
            instance=uuid.uuid4().hex
        )
    )
    if op.get_bind().dialect.name == "sqlite":
        for table in FACT_TABLES:
            for kind in KINDS:
                op.execute(
                    f"CREATE TRIGGER facts_changed_{table}_{kind} AFTER {kind.upper()} ON {table} "
                    "BEGIN UPDATE facts_version SET version = version + 1; END"
                )
        return
    op.execute(_PG_FUNCTION)
    for table in FACT_TABLES:
        op.execute(
            f"CREATE CONSTRAINT TRIGGER facts_changed_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tenure_facts_changed()"
        )
        op.execute(
            f"CREATE TRIGGER facts_changed_{table}_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION tenure_facts_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in FACT_TABLES:
            for kind in KINDS:
                op.execute(f"DROP TRIGGER IF EXISTS facts_changed_{table}_{kind}")
    else:
        for table in FACT_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS facts_changed_{table} ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS facts_changed_{table}_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS tenure_facts_changed()")
    op.drop_table("facts_version")

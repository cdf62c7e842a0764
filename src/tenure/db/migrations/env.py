"""Alembic environment: migrations run on the connection Tenure hands over (see Database.migrate)."""

from alembic import context

import tenure.models  # noqa: F401  (registers every table on the metadata)
from tenure.db.base import Base

connection = context.config.attributes.get("connection")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection is not None and connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

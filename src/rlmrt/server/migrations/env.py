"""Alembic's environment: migrations run on the connection `Store.open` hands over
(`config.attributes["connection"]`), never on one of their own."""

from __future__ import annotations

from alembic import context

from rlmrt.server.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters a table by copying it
)
with context.begin_transaction():
    context.run_migrations()

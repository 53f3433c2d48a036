"""Alembic environment: ltxserve passes its own connection in; no alembic.ini is involved."""

from alembic import context

from ltxserve.db.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

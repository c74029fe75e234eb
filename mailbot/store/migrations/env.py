"""Alembic environment: always run on the connection `mailbot.store.migrate` hands over."""

from alembic import context

from mailbot.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

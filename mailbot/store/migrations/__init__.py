"""Alembic migrations of the store; applied by `Store.open` (see `mailbot.store.migrate`)."""

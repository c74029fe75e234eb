"""The database's clock, which every node of a cluster shares (docs/cluster.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .schema import utc


def database_now(conn: Connection) -> datetime:
    """The database's clock (PostgreSQL `clock_timestamp()`); SQLite, a file on this host,
    has none of its own: this host's clock."""
    if conn.dialect.name == "postgresql":
        return utc(conn.execute(text("SELECT clock_timestamp()")).scalar_one())
    return datetime.now(UTC)

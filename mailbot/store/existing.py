"""The store's database as it is on disk, before anything opens it.

- `create_private(url)`: an SQLite database file is created 0600 before SQLite creates it
  with the umask's mode (0644 outside systemd): it holds outbox bodies with clear 認証キー.
  SQLite gives its `-wal` and `-shm` files the database file's mode.
- `absent(url)` and `schema_problem(engine)`: for a command that only reads (`mailbot status
  --check`), which must report a missing or unmigrated database instead of creating one
  (with a new secret beside it) and calling it healthy.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url

from .migrate import MIGRATIONS


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for another database, memory or a `file:` URI."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    return Path(database)


def create_private(url: str) -> None:
    """Create the SQLite file of `url` empty and 0600 if it is missing (an empty file is an
    empty database); a missing folder is left for SQLite to report."""
    path = sqlite_path(url)
    if path is None or not path.parent.is_dir():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def absent(url: str) -> Path | None:
    """The SQLite file of `url` when it does not exist (opening it would create it)."""
    path = sqlite_path(url)
    return path if path is not None and not path.exists() else None


def schema_problem(engine: Engine) -> str | None:
    """None when the database is at this release's newest revision, else what is wrong."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == head:
        return None
    if current is None:
        return "no mailbot schema in the database (run mailbot migrate)"
    return (f"the database is at revision {current}, this mailbot's is {head} (run mailbot "
            "migrate, or upgrade mailbot if a newer release migrated it)")

"""Bring a store database to the newest schema with Alembic, from inside the package.

No alembic.ini is needed: the script location is the `migrations` folder shipped with the
package, and the connection is the store's own engine.

On SQLite, a migration that changes a constraint rebuilds the table (`batch_alter_table`):
the old table is dropped, which enforced foreign keys refuse while rows refer to it. So
foreign keys are switched off for the migration (the pragma does nothing inside a
transaction: it is set before one begins), checked with `foreign_key_check` before the
commit, and switched on again.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from mailbot.errors import UsageError

MIGRATIONS = Path(__file__).parent / "migrations"


def refuse_unknown_revision(engine: Engine) -> None:
    """A database a newer release migrated is a usage error (exit 2, which the systemd unit
    does not restart), not a traceback restarted every few seconds: after going back to an
    older release, restore the backup taken before the upgrade."""
    scripts = ScriptDirectory(str(MIGRATIONS))
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
        shown = engine.url.render_as_string(hide_password=True)
        raise UsageError(f"the store {shown} is at revision {current}, which this mailbot "
                         f"does not know (newest here: {scripts.get_current_head()}); was it "
                         "migrated by a newer release? Run that release, or restore the "
                         "backup taken before the upgrade")


def upgrade(engine: Engine) -> None:
    refuse_unknown_revision(engine)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _foreign_keys(connection, False)
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                _foreign_keys(connection, True)


def _foreign_keys(connection: Connection, on: bool) -> None:
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()

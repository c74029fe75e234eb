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
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade(engine: Engine) -> None:
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

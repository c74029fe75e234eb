"""`mailbot migrate`: bring the store's schema to this release's newest revision, on purpose.

`Store.open` migrates at every start as well; this command lets an admin do it before a
rollout (docs/deploy.md, upgrades) and see from which revision to which. It needs no
key-hashing secret: it touches the schema, never a key.

With a PostgreSQL store and a `--config`, it then copies the raw mail an older release kept
in the local `[spool] dir` into the `raw_messages` table (`DbSpool.copy_files`), so that
every node of a cluster reads it: idempotent (a message already in the table is left), with
progress; the files stay until retention purges them with their rows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from ..config import load_config
from ..errors import UsageError
from ..ledger import DbSpool
from ..store import resolve_store_url
from ..store.existing import create_private
from ..store.migrate import MIGRATIONS, upgrade
from .options import Commands, add_config_and_store


def register(commands: Commands) -> None:
    migrate = commands.add_parser(
        "migrate", help="apply the store's schema migrations and say from which revision to which")
    add_config_and_store(migrate, config_required=False)
    migrate.set_defaults(func=run_migrate)


def head_revision() -> str:
    """The newest revision of the migration scripts this mailbot ships."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, f"no migration scripts in {MIGRATIONS}"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database no mailbot has migrated yet."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def run_migrate(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else None
    url = resolve_store_url(args.store, config.store_url if config else None)
    shown = make_url(url).render_as_string(hide_password=True)
    head = head_revision()
    create_private(url)
    engine = create_engine(url, hide_parameters=True)  # raw mail is a parameter of the copy
    try:
        try:
            before = current_revision(engine)
        except SQLAlchemyError as exc:
            raise UsageError(f"cannot open the store {shown}: {exc.__class__.__name__}: "
                             f"{str(exc).splitlines()[0]}") from exc
        known = {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
        if before is not None and before not in known:
            raise UsageError(f"the store {shown} is at revision {before}, which this mailbot "
                             f"does not know (newest here: {head}); was it migrated by a "
                             "newer release?")
        if before == head:
            print(f"{shown}: already at revision {head}, nothing to do")
        else:
            try:
                upgrade(engine)
            except (CommandError, SQLAlchemyError) as exc:
                raise UsageError(f"migrating the store {shown} from revision "
                                 f"{before or '(empty)'} failed: {exc}") from exc
            after = current_revision(engine)
            print(f"{shown}: migrated from revision {before or '(empty database)'} to {after}")
        if config is not None and engine.dialect.name == "postgresql":
            copy_spool(engine, config.spool_dir)
    finally:
        engine.dispose()
    return 0


def copy_spool(engine: Engine, folder: Path) -> None:
    """Copy the raw mail files of `folder` into `raw_messages`, saying how far it got."""
    if not folder.is_dir():
        return

    def progress(done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"spool {folder}: {done}/{total} file(s) checked", flush=True)

    added = DbSpool(engine, folder).copy_files(progress)
    print(f"spool {folder}: copied {added} raw message(s) into the raw_messages table")

"""Raw messages in the store's `raw_messages` table, so that every node of a cluster reads
what any node received (PostgreSQL); `spool_for` picks this or the local spool folder.

`DbSpool` keeps the `Spool` interface (`RawStore`, `mailbot/ledger/spool.py`) and its names
(`ab/<sha256>.eml`, the ledger's `spool_name`), one row per content:

- `put` inserts the row in a transaction of its own, committed when it returns (INSERT … ON
  CONFLICT (name) DO NOTHING: the same bytes twice is a no-op). `Ledger.receive` commits the
  ledger row after `put`, and a source acknowledges (SMTP/LMTP 250, IMAP move) only after
  that, so a message is durable before anyone is told "received". `keep` inserts the row
  again if it is gone by then.
- Retention's two steps are the file spool's, row for row, each in a committed transaction
  of its own. `withdraw` renames the row to its aside name (`ab/.purging-<sha256>.eml`, the
  name a withdrawn file gets): from that commit on, a `put` or `keep` of the same bytes finds
  no row under the name and inserts a new one. The purge then checks the ledger rows again
  (`mailbot/ledger/purge.py`): if a row that must keep the message turned up, `put_back`
  renames the aside row back (when a new row took the name meanwhile, it holds the same
  bytes and the aside row is dropped); otherwise `bury` deletes it before the purge
  commits. So, as with files, neither order of a purge and a receive of the same bytes
  leaves a ledger row without its raw mail. A purge that crashed after `withdraw` leaves
  the aside row: `read` still finds it, and the next purge withdraws it again and puts it
  back or deletes it (nothing with clear keys is left behind).
- An existing deployment that moves to this keeps the raw mail of its older rows in the
  local spool folder: `read` falls back to the file `folder/name` when the table has no row
  (a file only this host can read), retention withdraws, puts back and deletes that file
  along with the row, and `names` lists both. `copy_files` (run by `mailbot migrate`) copies
  such files into the table, so that other nodes read them too.

The local `folder` (the `[spool] dir`, made 0700) also holds the daemon's
one-daemon-per-spool lock file. The table holds raw mail with clear 認証キー like the spool
files do: access to the database is access to the raw mail (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, exists, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from mailbot.store.schema import raw_messages

from .spool import WITHDRAWN, RawStore, Spool


@dataclass(frozen=True)
class Withdrawn:
    """What `DbSpool.withdraw` took aside: the table's aside row, the local file, or both."""

    row: str | None  # the aside name of the row
    file: Path | None  # the withdrawn local file (raw mail of an older release)


def aside_name(name: str) -> str:
    """`ab/<sha256>.eml` → `ab/.purging-<sha256>.eml` (80 characters, the column's size)."""
    folder, _, base = name.rpartition("/")
    return f"{folder}/{WITHDRAWN}{base}" if folder else WITHDRAWN + base


class DbSpool:
    """Raw messages in `raw_messages`, with the local spool folder as the fallback for what
    an older release stored there."""

    def __init__(self, engine: Engine, folder: str | Path,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.files = Spool(folder)  # makes the folder 0700; older rows' raw mail is here
        self.folder = self.files.folder
        self.clock = clock or (lambda: datetime.now(UTC))

    @staticmethod
    def digest(raw: bytes) -> str:
        return Spool.digest(raw)

    def name_for(self, digest: str) -> str:
        return self.files.name_for(digest)

    def location(self, name: str) -> str:
        with self.engine.connect() as conn:
            if _has(conn, name):
                return f"database table raw_messages, {name}"
        return self.files.location(name)

    def put(self, raw: bytes) -> tuple[str, str]:
        """Store `raw` in its own committed transaction; returns (sha256, name)."""
        digest = self.digest(raw)
        name = self.name_for(digest)
        with self.engine.begin() as conn:
            self._insert(conn, name, raw)
        return digest, name

    def keep(self, name: str, raw: bytes) -> None:
        """The row is there again if a purge took it since `put`."""
        with self.engine.begin() as conn:
            if not _has(conn, name):
                self._insert(conn, name, raw)

    def read(self, name: str) -> bytes:
        """The row's bytes (also while a purge has it aside); without a row, the local file
        an older release spooled (`FileNotFoundError` when that is missing too)."""
        with self.engine.connect() as conn:
            found = {stored: raw for stored, raw in conn.execute(
                select(raw_messages.c.name, raw_messages.c.raw)
                .where(raw_messages.c.name.in_((name, aside_name(name)))))}
        if found:  # the live row, or the aside one while a purge has it
            return bytes(found[name] if name in found else found[aside_name(name)])
        try:
            return self.files.read(name)
        except FileNotFoundError:
            raise FileNotFoundError(f"raw message {name}: neither in the raw_messages table "
                                    f"nor in {self.folder}") from None

    # -- retention ------------------------------------------------------------------------
    def withdraw(self, name: str) -> Withdrawn | None:
        """Rename the row to its aside name (committed), and the local file aside if there
        is one; None when neither is there."""
        aside = aside_name(name)
        with self.engine.begin() as conn:
            # An aside row a crashed purge left, while the name is stored again: same bytes.
            conn.execute(delete(raw_messages).where(
                raw_messages.c.name == aside,
                exists().where(raw_messages.c.name == name)))
            moved = conn.execute(update(raw_messages).where(raw_messages.c.name == name)
                                 .values(name=aside)).rowcount
            row = aside if moved or _has(conn, aside) else None
        file = self.files.withdraw(name)
        return Withdrawn(row, file) if row is not None or file is not None else None

    def put_back(self, aside: Withdrawn, name: str) -> None:
        """Rename the aside row back (dropped instead when a new row has the name: the same
        bytes), and the file."""
        if aside.row is not None:
            columns = [raw_messages.c.name, raw_messages.c.raw, raw_messages.c.size,
                       raw_messages.c.stored_at]
            with self.engine.begin() as conn:
                conn.execute(self._insert_statement().from_select(
                    columns, select(literal(name), raw_messages.c.raw, raw_messages.c.size,
                                    raw_messages.c.stored_at)
                    .where(raw_messages.c.name == aside.row)).on_conflict_do_nothing())
                conn.execute(delete(raw_messages).where(raw_messages.c.name == aside.row))
        if aside.file is not None:
            self.files.put_back(aside.file, name)

    def bury(self, aside: Withdrawn) -> None:
        """Delete the aside row (committed) and the withdrawn file for good."""
        if aside.row is not None:
            with self.engine.begin() as conn:
                conn.execute(delete(raw_messages).where(raw_messages.c.name == aside.row))
        if aside.file is not None:
            self.files.bury(aside.file)

    def names(self) -> list[str]:
        """Every stored message's name, in the table or (older ones) in the folder."""
        with self.engine.connect() as conn:
            stored = {n for (n,) in conn.execute(select(raw_messages.c.name))
                      if not n.rpartition("/")[2].startswith(WITHDRAWN)}
        return sorted(stored | set(self.files.names()))

    # -- moving an older release's files into the table ------------------------------------
    def copy_files(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Copy every message of the local folder into the table (each in its own committed
        transaction; one already there is left): returns how many rows were new. The files
        stay (a rollback to an older release still finds them); retention deletes both."""
        names = self.files.names()
        added = 0
        for done, name in enumerate(names, 1):
            raw = self.files.read(name)
            if self.name_for(self.digest(raw)) == name:  # else not what its name says: left
                with self.engine.begin() as conn:
                    if not _has(conn, name):
                        self._insert(conn, name, raw)
                        added += 1
            if progress is not None:
                progress(done, len(names))
        return added

    def _insert_statement(self) -> Any:
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        return dialect.insert(raw_messages)

    def _insert(self, conn: Connection, name: str, raw: bytes) -> None:
        conn.execute(self._insert_statement()
                     .values(name=name, raw=raw, size=len(raw), stored_at=self.clock())
                     .on_conflict_do_nothing(index_elements=["name"]))


def _has(conn: Connection, name: str) -> bool:
    return conn.execute(select(raw_messages.c.name)
                        .where(raw_messages.c.name == name)).first() is not None


class _Configured(Protocol):
    @property
    def spool_dir(self) -> Path: ...


class _Stored(Protocol):
    @property
    def engine(self) -> Engine: ...


def spool_for(config: _Configured, store: _Stored) -> RawStore[Any]:
    """Where raw mail lives: the store's `raw_messages` table when it is PostgreSQL (shared
    by every node), the local `[spool] dir` folder with SQLite (one host)."""
    if store.engine.dialect.name == "postgresql":
        return DbSpool(store.engine, config.spool_dir)
    return Spool(config.spool_dir)

"""Retention on the ledger's side: which spool files may go, and marking their rows purged.

A spool file is named by its SHA-256, so several ledger rows (copies, the same mail in two
mailboxes) may use one file. A file may go only when *every* row that uses it and still has
it is eligible: decided or replied, received before the cut-off. A quarantined or undecided
(received, processing) row keeps its file, and with it every copy that shares it. The rows
stay, decision and all (keys masked), with `purged_at` set: `Ledger.raw` then raises
`RawPurged` instead of failing on a missing file.

A purge of one file: `Spool.withdraw` renames it aside, the rows are checked again (a new
row may have arrived for the same bytes meanwhile: the file is put back), marked purged,
and the file deleted before the commit. `Ledger.receive` writes the file again when it finds
it gone after recording its row, so neither order of a purge and a receive loses bytes. The
`raw_messages` table of a PostgreSQL store (`mailbot/ledger/rawstore.py`) takes the same
steps with rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, not_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from mailbot.store.schema import ledger, utc

from .entry import LedgerState
from .spool import RawStore

DONE = (LedgerState.DECIDED, LedgerState.REPLIED)


@dataclass(frozen=True)
class SpoolFile:
    """A spool file retention may delete, and the ledger rows that use it."""

    sha256: str
    name: str
    rows: tuple[int, ...]
    received_at: datetime  # the latest of its rows


def _eligible(cutoff: datetime) -> ColumnElement[bool]:
    return and_(ledger.c.state.in_(DONE), ledger.c.received_at < cutoff)


def purgeable(conn: Connection, cutoff: datetime) -> list[SpoolFile]:
    """The spool files whose every unpurged row is eligible, oldest first."""
    blocking = func.sum(case((not_(_eligible(cutoff)), 1), else_=0))
    query = (select(ledger.c.sha256, func.min(ledger.c.spool_name).label("name"),
                    func.max(ledger.c.received_at).label("latest"))
             .where(ledger.c.purged_at.is_(None))
             .group_by(ledger.c.sha256)
             .having(blocking == 0)
             .order_by(func.max(ledger.c.received_at), ledger.c.sha256))
    found = conn.execute(query).all()
    rows: dict[str, list[int]] = {}
    for chunk in _chunks([f.sha256 for f in found], 500):
        for row_id, sha in conn.execute(
                select(ledger.c.id, ledger.c.sha256)
                .where(ledger.c.sha256.in_(chunk), ledger.c.purged_at.is_(None))
                .order_by(ledger.c.id)):
            rows.setdefault(sha, []).append(row_id)
    return [SpoolFile(f.sha256, f.name, tuple(rows.get(f.sha256, ())), utc(f.latest))
            for f in found]


def purge_file(engine: Engine, spool: RawStore[Any], file: SpoolFile, cutoff: datetime,
               now: datetime) -> bool:
    """Delete `file` and mark its rows purged; False when a row that must keep it turned up
    (the file stays)."""
    aside = spool.withdraw(file.name)
    with engine.begin() as conn:
        kept = conn.execute(
            select(func.count()).select_from(ledger)
            .where(ledger.c.sha256 == file.sha256, ledger.c.purged_at.is_(None),
                   not_(_eligible(cutoff)))).scalar_one()
        if kept:
            if aside is not None:
                spool.put_back(aside, file.name)
            return False
        conn.execute(update(ledger)
                     .where(ledger.c.sha256 == file.sha256, ledger.c.purged_at.is_(None))
                     .values(purged_at=now))
        if aside is not None:  # gone already (a crash after the delete): the rows say so now
            spool.bury(aside)
    return True


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

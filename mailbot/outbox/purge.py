"""Retention on the outbox's side: the bodies of mail that is done with, purged.

A rendered reply, alert or submission holds what the notice held, 認証キー included (a
submission carries the notice PDF). Once a row is `sent` (by `sent_at`) or `cancelled` (by
`created_at`, it can never be sent) before the cut-off, its body is set to NULL and
`purged_at` records when; the row (recipients, Message-ID, subject, state, times) stays for
the audit trail. Queued and failed rows keep their bodies: they may still go out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from mailbot.store.schema import outbox, utc

from .rows import OutboxState


@dataclass(frozen=True)
class OutboxBody:
    """An outbox row whose body retention may purge."""

    id: int
    kind: str
    state: str
    message_id: str
    done_at: datetime  # sent_at, or created_at for a cancelled row
    size: int


def _eligible(cutoff: datetime) -> ColumnElement[bool]:
    return and_(outbox.c.raw.is_not(None), or_(
        and_(outbox.c.state == OutboxState.SENT, outbox.c.sent_at < cutoff),
        and_(outbox.c.state == OutboxState.CANCELLED, outbox.c.created_at < cutoff)))


def purgeable(conn: Connection, cutoff: datetime) -> list[OutboxBody]:
    """Rows whose body may go, oldest first."""
    query = (select(outbox.c.id, outbox.c.kind, outbox.c.state, outbox.c.message_id,
                    outbox.c.sent_at, outbox.c.created_at, func.length(outbox.c.raw))
             .where(_eligible(cutoff)).order_by(outbox.c.id))
    return [OutboxBody(r.id, r.kind, r.state, r.message_id, utc(r.sent_at or r.created_at),
                       int(r[6] or 0)) for r in conn.execute(query)]


def purge_bodies(conn: Connection, ids: list[int], cutoff: datetime, now: datetime) -> int:
    """Purge the bodies of `ids` that are still eligible; how many were."""
    done = 0
    for start in range(0, len(ids), 500):
        done += conn.execute(
            update(outbox).where(outbox.c.id.in_(ids[start:start + 500]), _eligible(cutoff))
            .values(raw=None, purged_at=now)).rowcount
    return done

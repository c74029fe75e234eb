"""The outbox: every message mailbot sends, durable from the moment it is rendered.

`Outbox` is the `outbox` table's owner: `Queueing` puts mail in it (stored reply requests
rendered, digests, alerts, submissions), `Delivery` sends it; the administration here lists
rows, retries and cancels them. What a row carries out follows its state through the
listeners (`rows.Change`): the reply requests' (always) and the submissions' (registered by
`mailbot.outgoing.outbox_for`). The clock is always a parameter. Datetimes are stored in
UTC; a failed row's `next_attempt_at` is the moment it failed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from mailbot.ledger import requests
from mailbot.ledger.requests import ReplyRow
from mailbot.store.schema import outbox

from .delivery import Delivery
from .queueing import Queueing
from .rows import ROW_COLUMNS, OutboxRow, aware_utc, outbox_row


class Outbox(Queueing, Delivery):
    def rows(self, state: str | None = None, with_raw: bool = False) -> list[OutboxRow]:
        columns = [*ROW_COLUMNS, outbox.c.raw] if with_raw else ROW_COLUMNS
        query = select(*columns).order_by(outbox.c.id)
        if state is not None:
            query = query.where(outbox.c.state == state)
        with self.engine.connect() as conn:
            return [outbox_row(row._mapping) for row in conn.execute(query)]

    def counts(self) -> dict[tuple[str, str], int]:
        """(kind, state) → how many rows."""
        query = select(outbox.c.kind, outbox.c.state, func.count()).group_by(
            outbox.c.kind, outbox.c.state)
        with self.engine.connect() as conn:
            return {(kind, state): count for kind, state, count in conn.execute(query)}

    @staticmethod
    def kinds_of(conn: Connection, message_ids: Sequence[str]) -> dict[str, str]:
        """Message-ID → kind of those of `message_ids` that are our own mail."""
        if not message_ids:
            return {}
        return {mid: kind for mid, kind in conn.execute(
            select(outbox.c.message_id, outbox.c.kind)
            .where(outbox.c.message_id.in_(list(message_ids))))}

    def by_message_id(self, message_id: str) -> OutboxRow | None:
        """The row that sends the mail with this Message-ID (a submission's), if any."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*ROW_COLUMNS)
                               .where(outbox.c.message_id == message_id)).first()
        return outbox_row(row._mapping) if row else None

    def retry(self, row_id: int, now: datetime, conn: Connection | None = None) -> bool:
        """A failed row goes back in line with fresh attempts and a new deadline (unless a
        resend check refuses it). With `conn`, in the caller's transaction."""
        now = aware_utc(now)
        with _begin(self.engine, conn) as conn:
            found = conn.execute(select(*ROW_COLUMNS).where(outbox.c.id == row_id)).first()
            row = outbox_row(found._mapping) if found else None
            if row is None or row.state != "failed":
                return False
            for may_resend in self.resend_checks:
                if not may_resend(conn, row):
                    return False
            done = conn.execute(
                update(outbox).where(outbox.c.id == row_id, outbox.c.state == "failed").values(
                    state="queued", attempts=0, next_attempt_at=now,
                    deadline=self._deadline(now, row.immediate, row.window))
            ).rowcount
            if done:
                self._notify(conn, row, "queued", now)
        return bool(done)

    def cancel(self, row_id: int, conn: Connection | None = None) -> bool:
        """A queued or failed row will not be sent. With `conn`, in the caller's
        transaction."""
        with _begin(self.engine, conn) as conn:
            found = conn.execute(select(*ROW_COLUMNS).where(outbox.c.id == row_id)).first()
            if found is None:
                return False
            row = outbox_row(found._mapping)
            done = conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.state.in_(("queued", "failed")))
                .values(state="cancelled")
            ).rowcount
            if done:
                self._notify(conn, row, "cancelled", None)
        return bool(done)

    def failed_since(self, since: datetime) -> list[OutboxRow]:
        """Rows that failed at or after `since` (a failed row's next_attempt_at is when)."""
        query = (
            select(*ROW_COLUMNS)
            .where(outbox.c.state == "failed", outbox.c.next_attempt_at >= aware_utc(since))
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
        )
        with self.engine.connect() as conn:
            return [outbox_row(row._mapping) for row in conn.execute(query)]

    # -- the reply requests behind the rows (their table is the ledger's) -------------
    def replies(self, state: str | None = None) -> list[ReplyRow]:
        """Reply requests (oldest first), e.g. the `failed` ones no outbox row stands for."""
        with self.engine.connect() as conn:
            return requests.requests(conn, state)

    def retry_reply(self, request_id: int) -> bool:
        """A request that could not be rendered is rendered again at the next run."""
        with self.engine.begin() as conn:
            return requests.retry(conn, request_id)

    def cancel_reply(self, request_id: int) -> bool:
        """A request not yet rendered, or that could not be, will never be sent."""
        with self.engine.begin() as conn:
            return requests.cancel(conn, request_id)


@contextmanager
def _begin(engine: Engine, conn: Connection | None) -> Iterator[Connection]:
    """The caller's transaction when it gives one, else a transaction of our own."""
    if conn is not None:
        yield conn
        return
    with engine.begin() as own:
        yield own

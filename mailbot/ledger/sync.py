"""Where each IMAP mailbox's sync stands (`mailbox_state`): its UIDVALIDITY, the highest UID
recorded and the last error, and which UIDs the ledger already holds. Mixed into `Ledger`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Engine

from mailbot.store.schema import ledger, mailbox_state, utc


@dataclass(frozen=True)
class SourceState:
    """One `mailbox_state` row: when the source last synced and last failed (UTC)."""

    mailbox: str
    last_sync_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    @property
    def down_since(self) -> datetime | None:
        """The last good sync when an error came after it (the source is down since then);
        None while it works. A source that never synced has no such moment."""
        if self.last_error_at is None:
            return None
        if self.last_sync_at is not None and self.last_sync_at >= self.last_error_at:
            return None
        return self.last_sync_at

    @property
    def failing(self) -> bool:
        return self.last_error_at is not None and (
            self.last_sync_at is None or self.last_error_at > self.last_sync_at)


def source_states(conn: Connection) -> list[SourceState]:
    """Every source's `mailbox_state` row, by mailbox name."""
    def aware(value: datetime | None) -> datetime | None:
        return None if value is None else utc(value)

    return [SourceState(r.mailbox, aware(r.last_sync_at), r.last_error, aware(r.last_error_at))
            for r in conn.execute(select(mailbox_state).order_by(mailbox_state.c.mailbox))]


class MailboxSync:
    engine: Engine

    def mailbox_state(self, mailbox: str) -> tuple[int | None, int]:
        """(UIDVALIDITY, highest UID recorded) of an IMAP mailbox; (None, 0) when new."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(mailbox_state.c.uidvalidity, mailbox_state.c.last_uid).where(
                    mailbox_state.c.mailbox == mailbox
                )
            ).first()
        return (row.uidvalidity, row.last_uid) if row else (None, 0)

    def set_mailbox_state(
        self, mailbox: str, uidvalidity: int | None, last_uid: int, error: str | None = None
    ) -> None:
        now = datetime.now(UTC)
        values: dict[str, Any] = {"uidvalidity": uidvalidity, "last_uid": last_uid,
                                  "last_sync_at": now}
        if error is not None:
            values.update(last_error=error, last_error_at=now)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(mailbox_state).where(mailbox_state.c.mailbox == mailbox).values(**values)
            ).rowcount
            if not done:
                conn.execute(insert(mailbox_state).values(mailbox=mailbox, **values))

    def record_error(self, mailbox: str, error: str) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(mailbox_state)
                .where(mailbox_state.c.mailbox == mailbox)
                .values(last_error=error[:2000], last_error_at=now)
            ).rowcount
            if not done:
                conn.execute(insert(mailbox_state).values(
                    mailbox=mailbox, last_uid=0, last_error=error[:2000], last_error_at=now))

    def known_uids(self, mailbox: str, uidvalidity: int, uids: list[int]) -> set[int]:
        """Which of `uids` (under `uidvalidity`) the ledger already holds."""
        if not uids:
            return set()
        query = select(ledger.c.uid).where(
            and_(ledger.c.mailbox == mailbox, ledger.c.uidvalidity == uidvalidity,
                 ledger.c.uid.in_(uids))
        )
        with self.engine.connect() as conn:
            return {row.uid for row in conn.execute(query)}

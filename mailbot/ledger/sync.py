"""Where each IMAP mailbox's sync stands (`mailbox_state`): its UIDVALIDITY, the highest UID
recorded and the last error, and which UIDs the ledger already holds. Mixed into `Ledger`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine

from mailbot.store.schema import ledger, mailbox_state


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

"""Copies of one message in the ledger: which earlier rows hold it, and what that makes of a
new row (a duplicate to file, or a mail moved back to decide again). Mixed into `Ledger`."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine

from mailbot.store.schema import ledger

from .entry import ENTRY_COLUMNS, Earlier, Entry, LedgerState, entry_of


class Copies:
    engine: Engine

    def same_message(self, mailbox: str, message_id: str | None, body_sha256: str,
                     entry_id: int) -> int | None:
        """The ledger row already decided for this Message-ID and body in `mailbox`, if any
        (a second delivery of one message: Received: headers differ, nothing else)."""
        if not message_id:
            return None
        with self.engine.connect() as conn:
            found: int | None = conn.execute(
                select(ledger.c.id).where(ledger.c.mailbox == mailbox,
                                          ledger.c.message_id == message_id,
                                          ledger.c.body_sha256 == body_sha256,
                                          ledger.c.id != entry_id)
            ).scalar()
            return found

    def copies(self, entry: Entry, body_sha256: str) -> list[Entry]:
        """The other rows of `entry`'s message in its mailbox, oldest first, quarantined ones
        left out: the rows received before it with the same bytes, the first row of its
        Message-ID and body (`same_message`), and every copy of those."""
        same = [and_(ledger.c.sha256 == entry.sha256, ledger.c.id < entry.id)]
        first = self.same_message(entry.mailbox, entry.message_id, body_sha256, entry.id)
        if first is not None:
            same.append(ledger.c.id == first)
        others = [ledger.c.mailbox == entry.mailbox, ledger.c.id != entry.id,
                  ledger.c.state != LedgerState.QUARANTINED]
        with self.engine.connect() as conn:
            found = conn.execute(
                select(ledger.c.id, ledger.c.copy_of).where(*others, or_(*same))
            ).all()
            heads = {r.id for r in found} | {r.copy_of for r in found if r.copy_of is not None}
            if not heads:
                return []
            rows = conn.execute(
                select(*ENTRY_COLUMNS)
                .where(*others, or_(ledger.c.id.in_(heads), ledger.c.copy_of.in_(heads)))
                .order_by(ledger.c.id)
            )
            return [entry_of(row._mapping) for row in rows]

    def earlier_copy(self, entry: Entry, body_sha256: str) -> Earlier | None:
        """Is `entry` a copy of a message seen before, and what is to be done with it?

        None: it is the first of its message; decide it. Otherwise the rule is:

        - **redecision** — a mail a person moved back into the watched folder: it has a UID
          (IMAP), an earlier row holds the same bytes (IMAP MOVE/COPY keeps them; a second
          delivery gains other trace headers), and *every* earlier row of the message has
          been moved out of the folder by us (`action` "move:…" done; a UID found gone when
          we came to move it counts too). It is decided again against the current store;
          `of` is the latest decision of its own (not a filed duplicate), to link and
          compare with.
        - **duplicate** — anything else: a relay's retry (no UID), a second delivery with
          the same Message-ID and body, or a second copy while an earlier one is still in
          the folder (received, being decided, waiting for its move, or filed in place by a
          keyword). It gets no decision of its own and no reply and is filed as done; `of`
          is the latest decision of its own, or the first row while none is made yet.

        The first row comes first by ledger id: of two copies arriving together the later
        row is the duplicate, whichever pipeline claims it first."""
        rows = self.copies(entry, body_sha256)
        if not rows:
            return None
        head = min(r.copy_of or r.id for r in rows)
        before = [r for r in rows if r.id < entry.id]
        # The decision to link: the latest one before it (a later one only when a row that
        # was quarantined is decided after its copies).
        decided = [r for r in before if r.own_decision] or [r for r in rows if r.own_decision]
        latest = decided[-1] if decided else None
        moved_back = (
            entry.uid is not None
            and latest is not None
            and any(r.sha256 == entry.sha256 for r in before)
            and all(r.filed_away for r in before)
        )
        if moved_back and latest is not None:
            return Earlier("redecision", latest.id, head, latest.record)
        return Earlier("duplicate", latest.id if latest else rows[0].id, head, None)

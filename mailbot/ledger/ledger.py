"""The ledger: one row per received message, and the state machine that makes every message
decided exactly once and filed (DESIGN.md §6).

`receive()` spools the bytes durably, then commits a row — only after that may a source
acknowledge (SMTP 250, IMAP flag/move). An IMAP message is keyed by (mailbox, UIDVALIDITY,
UID): every message in a watched folder is its own row and ends filed, also a byte-identical
second copy and a mail a clerk moved back; only after a UIDVALIDITY change is a message found
again by its content hash, so that a re-sync decides nothing twice. A message without a UID
(SMTP/LMTP) is keyed by its content hash, so a relay's retry after a crash finds the row it
already made. `claim()` marks a row `processing` (and counts the attempt) before work;
`earlier_copy()` tells the pipeline whether the row is a copy of a message it has seen (a
duplicate to file, or a mail moved back to decide again); `decide()` stores the decision,
the reply request and the pending mailbox action in one transaction; `fail()` returns the
row for another try or, on the third failure, quarantines it with its traceback.
`recover()` at start puts rows a crash left in `processing` back in line. The ledger lives
in the store database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from mailbot.store.schema import ledger, mailbox_state, reply_requests
from parsers.headers import decode_header_text, raw_header

from .spool import Spool

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Receipt:
    id: int
    new: bool


@dataclass(frozen=True)
class Entry:
    id: int
    mailbox: str
    uidvalidity: int | None
    uid: int | None
    sha256: str
    spool_name: str
    message_id: str | None
    sender: str | None
    subject: str | None
    received_at: datetime
    state: str
    attempts: int
    last_error: str | None
    decision: str | None
    action: str | None
    action_state: str
    reply_wanted: bool
    copy_of: int | None  # on a copy: the first row of its message

    @property
    def filed_away(self) -> bool:
        """We moved the message out of the watched folder (or found it gone when we tried)."""
        return bool(self.action and self.action.startswith("move:")
                    and self.action_state == "done")

    @property
    def record(self) -> dict[str, Any] | None:
        """The decision record; None before a decision."""
        if not self.decision:
            return None
        try:
            record = json.loads(self.decision)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    @property
    def own_decision(self) -> bool:
        """Decided on its own, not filed as a duplicate of another row's decision."""
        record = self.record
        return (self.state in ("decided", "replied") and record is not None
                and "duplicate_of" not in record)


@dataclass(frozen=True)
class Earlier:
    """How a row relates to the rows of the same message seen before it (`earlier_copy`)."""

    kind: str  # "duplicate" | "redecision"
    of: int  # the row whose decision it shares, or the decision it makes again
    head: int  # the first row of the message
    decision: dict[str, Any] | None  # the decision made again (a redecision only)


@dataclass(frozen=True)
class ReplyRequest:
    """What the outbox will send; until it exists the request is only stored."""

    to_addr: str
    template: str
    context: dict[str, Any]


_ENTRY_COLUMNS = [ledger.c[name] for name in Entry.__dataclass_fields__]


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone: they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _entry(mapping: Any) -> Entry:
    values = dict(mapping)
    values["received_at"] = utc(values["received_at"])
    return Entry(**values)


def _headers(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """Message-ID, From and Subject decoded to one line each, for the ledger's listing only
    (no NUL, which PostgreSQL text refuses, no control characters, no lone surrogates)."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
    except Exception:
        return None, None, None
    values = []
    for name in ("Message-ID", "From", "Subject"):
        value = raw_header(headers, name)
        values.append(None if value is None else decode_header_text(value)[:500])
    return values[0], values[1], values[2]


class Ledger:
    def __init__(self, engine: Engine, spool: Spool) -> None:
        self.engine = engine
        self.spool = spool

    # -- intake -----------------------------------------------------------------------
    def receive(
        self,
        mailbox: str,
        raw: bytes,
        *,
        uidvalidity: int | None = None,
        uid: int | None = None,
        reply_wanted: bool = True,
        now: datetime | None = None,
    ) -> Receipt:
        """Spool and record `raw`; returns the row and whether it is new. Durable on return.

        With a UID (IMAP) the row is the one of (mailbox, UIDVALIDITY, UID). A new UID is a
        new row even when the bytes are known: a second copy in the folder, or a mail a
        clerk moved back, must be filed too (`earlier_copy()` tells which). Only a message
        recorded under an earlier UIDVALIDITY and not moved out of the folder since is the
        same message found again by a re-sync: its row takes the new UID. Without a UID
        (SMTP/LMTP) the same bytes in the same mailbox are the same row."""
        digest, name = self.spool.put(raw)
        message_id, sender, subject = _headers(raw)
        values = dict(
            mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, sha256=digest,
            # A blank Message-ID is none: `same_message` looks for no copy of it, so it must
            # not meet another row's blank one in the unique (Message-ID, body) index either.
            spool_name=name, size=len(raw), message_id=message_id or None, sender=sender,
            subject=subject, received_at=now or datetime.now(UTC), state="received",
            attempts=0, action_state="none", reply_wanted=reply_wanted,
        )
        if uid is None:
            return self._receive_unsourced(values)
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(ledger.c.id).where(
                    ledger.c.mailbox == mailbox,
                    ledger.c.uidvalidity == uidvalidity,
                    ledger.c.uid == uid,
                )
            ).scalar()
            if existing is not None:
                # (mailbox, UIDVALIDITY, UID) already recorded (with these or other bytes).
                return Receipt(existing, False)
            stale = conn.execute(
                select(ledger.c.id)
                .where(
                    ledger.c.mailbox == mailbox,
                    ledger.c.sha256 == digest,
                    ledger.c.uidvalidity != uidvalidity,
                    or_(ledger.c.action.is_(None), ~ledger.c.action.like("move:%"),
                        ledger.c.action_state != "done"),  # not moved out by us
                )
                .order_by(ledger.c.id)
                .limit(1)
            ).scalar()
            if stale is not None:
                # The same message under a new UIDVALIDITY: remember where it is now.
                conn.execute(
                    update(ledger)
                    .where(ledger.c.id == stale)
                    .values(uidvalidity=uidvalidity, uid=uid)
                )
                return Receipt(stale, False)
            row_id = conn.execute(insert(ledger).values(**values)).inserted_primary_key[0]
        return Receipt(int(row_id), True)

    def _receive_unsourced(self, values: dict[str, Any]) -> Receipt:
        """A message without a UID: one row per content (a relay's retry is the same)."""
        same = select(ledger.c.id).where(
            ledger.c.mailbox == values["mailbox"], ledger.c.sha256 == values["sha256"]
        ).order_by(ledger.c.id).limit(1)
        try:
            with self.engine.begin() as conn:
                found = conn.execute(same).scalar()
                if found is not None:
                    return Receipt(found, False)
                row_id = conn.execute(insert(ledger).values(**values)).inserted_primary_key[0]
        except IntegrityError:
            # The same bytes arrived on another connection at the same moment.
            with self.engine.connect() as conn:
                found = conn.execute(same).scalar()
            if found is None:
                raise
            return Receipt(found, False)
        return Receipt(int(row_id), True)

    # -- processing -------------------------------------------------------------------
    def recover(self) -> int:
        """At start: rows a crash left in `processing` go back in line; returns how many.

        A row that was in hand at MAX_ATTEMPTS crashes of the whole process (a segfault, an
        OOM kill) is quarantined instead: the pipeline never got to `fail()` it."""
        with self.engine.begin() as conn:
            conn.execute(
                update(ledger)
                .where(ledger.c.state == "processing", ledger.c.attempts >= MAX_ATTEMPTS)
                .values(state="quarantined",
                        last_error="the process died while deciding this message "
                                   f"{MAX_ATTEMPTS} times (killed or crashed)")
            )
            return conn.execute(
                update(ledger).where(ledger.c.state == "processing").values(state="received")
            ).rowcount

    def claim(self) -> Entry | None:
        """The oldest received row, now `processing` with its attempt counted."""
        with self.engine.begin() as conn:
            while True:
                row = conn.execute(
                    select(*_ENTRY_COLUMNS)
                    .where(ledger.c.state == "received")
                    .order_by(ledger.c.id)
                    .limit(1)
                ).first()
                if row is None:
                    return None
                taken = conn.execute(
                    update(ledger)
                    .where(ledger.c.id == row.id, ledger.c.state == "received")
                    .values(state="processing", attempts=ledger.c.attempts + 1)
                ).rowcount
                if taken:
                    entry = _entry(row._mapping)
                    return Entry(**{**entry.__dict__, "state": "processing",
                                    "attempts": entry.attempts + 1})

    def decide(
        self,
        entry_id: int,
        decision: dict[str, Any],
        reply: ReplyRequest | None,
        action: str | None,
        now: datetime | None = None,
        attempt: int | None = None,
        body_sha256: str | None = None,
        extra: Callable[[Connection, dict[str, Any], datetime], str | None] | None = None,
        copy_of: int | None = None,
    ) -> None:
        """Record the decision, its reply request and the pending mailbox action at once.

        `attempt` is the claim's attempt number: a claim that went stale (another process
        recovered and re-claimed the row) cannot decide it a second time. `extra` writes
        what else the decision causes (the contractor side's submissions) in the same
        transaction, may complete `decision`, and returns the mailbox action to use.
        `body_sha256` marks the message as the first of its Message-ID and body; `copy_of`
        names the first row of the message on a later copy (`Earlier.head`)."""
        now = now or datetime.now(UTC)
        claimed = [ledger.c.id == entry_id, ledger.c.state == "processing"]
        if attempt is not None:
            claimed.append(ledger.c.attempts == attempt)
        with self.engine.begin() as conn:
            if extra is not None:
                action = extra(conn, decision, now)
            done = conn.execute(
                update(ledger)
                .where(*claimed)
                .values(
                    state="decided",
                    decided_at=now,
                    decision=json.dumps(decision, ensure_ascii=False, default=str),
                    action=action,
                    action_state="pending" if action else "none",
                    last_error=None,
                    body_sha256=body_sha256,
                    copy_of=copy_of,
                )
            ).rowcount
            if not done:
                raise RuntimeError(f"ledger row {entry_id} is not being processed")
            if reply is not None:
                conn.execute(
                    insert(reply_requests).values(
                        ledger_id=entry_id, to_addr=reply.to_addr, template=reply.template,
                        context=json.dumps(reply.context, ensure_ascii=False, default=str),
                        state="stored", created_at=now,
                    )
                )

    def fail(self, entry_id: int, error: str, attempt: int | None = None) -> str:
        """Record a crash of the pipeline; returns the new state (`received` or `quarantined`,
        or the row's state unchanged when the claim is no longer ours)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(ledger.c.attempts, ledger.c.state).where(ledger.c.id == entry_id)
            ).one()
            if row.state != "processing" or (attempt is not None and row.attempts != attempt):
                return str(row.state)
            state = "quarantined" if row.attempts >= MAX_ATTEMPTS else "received"
            conn.execute(
                update(ledger)
                .where(ledger.c.id == entry_id, ledger.c.state == "processing")
                .values(state=state, last_error=error[-20000:])
            )
        return state

    def retry(self, entry_id: int) -> bool:
        """Give a quarantined row three fresh attempts."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(ledger)
                    .where(ledger.c.id == entry_id, ledger.c.state == "quarantined")
                    .values(state="received", attempts=0)
                ).rowcount
            )

    # -- mailbox actions --------------------------------------------------------------
    def pending_actions(self, mailbox: str, limit: int = 500) -> list[Entry]:
        query = (
            select(*_ENTRY_COLUMNS)
            .where(ledger.c.mailbox == mailbox, ledger.c.action_state == "pending")
            .order_by(ledger.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_entry(row._mapping) for row in conn.execute(query)]

    def action_done(self, entry_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ledger).where(ledger.c.id == entry_id).values(action_state="done"))

    # -- reading ----------------------------------------------------------------------
    def get(self, entry_id: int) -> Entry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_ENTRY_COLUMNS).where(ledger.c.id == entry_id)).first()
        return _entry(row._mapping) if row else None

    def entries(self, state: str | None = None, limit: int = 1000) -> list[Entry]:
        query = select(*_ENTRY_COLUMNS).order_by(ledger.c.id).limit(limit)
        if state:
            query = query.where(ledger.c.state == state)
        with self.engine.connect() as conn:
            return [_entry(row._mapping) for row in conn.execute(query)]

    def counts(self) -> dict[str, dict[str, int]]:
        """mailbox → state → number of rows."""
        query = select(ledger.c.mailbox, ledger.c.state, func.count()).group_by(
            ledger.c.mailbox, ledger.c.state
        )
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for mailbox, state, count in conn.execute(query):
                out.setdefault(mailbox, {})[state] = count
        return out

    def same_message(self, mailbox: str, message_id: str | None, body_sha256: str,
                     entry_id: int) -> int | None:
        """The ledger row already decided for this Message-ID and body in `mailbox`, if any
        (a second delivery of one message: Received: headers differ, nothing else)."""
        if not message_id:
            return None
        with self.engine.connect() as conn:
            return conn.execute(
                select(ledger.c.id).where(ledger.c.mailbox == mailbox,
                                          ledger.c.message_id == message_id,
                                          ledger.c.body_sha256 == body_sha256,
                                          ledger.c.id != entry_id)
            ).scalar()

    def copies(self, entry: Entry, body_sha256: str) -> list[Entry]:
        """The other rows of `entry`'s message in its mailbox, oldest first, quarantined ones
        left out: the rows received before it with the same bytes, the first row of its
        Message-ID and body (`same_message`), and every copy of those."""
        same = [and_(ledger.c.sha256 == entry.sha256, ledger.c.id < entry.id)]
        first = self.same_message(entry.mailbox, entry.message_id, body_sha256, entry.id)
        if first is not None:
            same.append(ledger.c.id == first)
        others = [ledger.c.mailbox == entry.mailbox, ledger.c.id != entry.id,
                  ledger.c.state != "quarantined"]
        with self.engine.connect() as conn:
            found = conn.execute(
                select(ledger.c.id, ledger.c.copy_of).where(*others, or_(*same))
            ).all()
            heads = {r.id for r in found} | {r.copy_of for r in found if r.copy_of is not None}
            if not heads:
                return []
            rows = conn.execute(
                select(*_ENTRY_COLUMNS)
                .where(*others, or_(ledger.c.id.in_(heads), ledger.c.copy_of.in_(heads)))
                .order_by(ledger.c.id)
            )
            return [_entry(row._mapping) for row in rows]

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

    def raw(self, entry: Entry) -> bytes:
        return self.spool.read(entry.spool_name)

    # -- mailbox sync state -----------------------------------------------------------
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

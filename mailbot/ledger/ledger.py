"""The ledger: one row per received message, and the state machine that makes every message
decided exactly once (DESIGN.md §6).

`receive()` spools the bytes durably, then commits a row — only after that may a source
acknowledge (SMTP 250, IMAP flag/move). It is idempotent on (mailbox, UIDVALIDITY, UID) and
on the content hash, so an IMAP re-sync or an SMTP retry after a crash finds the row it
already made. `claim()` marks a row `processing` (and counts the attempt) before work;
`decide()` stores the decision, the reply request and the pending mailbox action in one
transaction; `fail()` returns the row for another try or, on the third failure,
quarantines it with its traceback. `recover()` at start puts rows a crash left in
`processing` back in line. The ledger lives in the store database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

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
        """Spool and record `raw`; returns the row and whether it is new. Durable on return."""
        digest, name = self.spool.put(raw)
        message_id, sender, subject = _headers(raw)
        with self.engine.begin() as conn:
            found = conn.execute(
                select(ledger.c.id, ledger.c.uidvalidity, ledger.c.uid).where(
                    ledger.c.mailbox == mailbox, ledger.c.sha256 == digest
                )
            ).first()
            if found is not None:
                if uid is not None and (found.uidvalidity, found.uid) != (uidvalidity, uid):
                    # Same message under a new UIDVALIDITY (or copied): remember where it is now.
                    conn.execute(
                        update(ledger)
                        .where(ledger.c.id == found.id)
                        .values(uidvalidity=uidvalidity, uid=uid)
                    )
                return Receipt(found.id, False)
            if uid is not None:
                # (mailbox, UIDVALIDITY, UID) already recorded with other bytes: keep the first.
                existing = conn.execute(
                    select(ledger.c.id).where(
                        ledger.c.mailbox == mailbox,
                        ledger.c.uidvalidity == uidvalidity,
                        ledger.c.uid == uid,
                    )
                ).scalar()
                if existing is not None:
                    return Receipt(existing, False)
            row_id = conn.execute(
                insert(ledger).values(
                    mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, sha256=digest,
                    spool_name=name, size=len(raw), message_id=message_id, sender=sender,
                    subject=subject, received_at=now or datetime.now(UTC), state="received",
                    attempts=0, action_state="none", reply_wanted=reply_wanted,
                )
            ).inserted_primary_key[0]
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
    ) -> None:
        """Record the decision, its reply request and the pending mailbox action at once.

        `attempt` is the claim's attempt number: a claim that went stale (another process
        recovered and re-claimed the row) cannot decide it a second time. `extra` writes
        what else the decision causes (the contractor side's submissions) in the same
        transaction, may complete `decision`, and returns the mailbox action to use.
        `body_sha256` marks the message as the first of its Message-ID and body."""
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

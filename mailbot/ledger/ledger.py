"""The ledger: one row per received message, and the state machine that makes every message
decided exactly once and filed (docs/reliability.md).

`receive()` spools the bytes durably, then commits a row — only after that may a source
acknowledge (SMTP 250, IMAP flag/move). An IMAP message is keyed by (mailbox, UIDVALIDITY,
UID): every message in a watched folder is its own row and ends filed, also a byte-identical
second copy and a mail a clerk moved back; only after a UIDVALIDITY change is a message found
again by its content hash, so that a re-sync decides nothing twice. A message without a UID
(SMTP/LMTP) is keyed by its content hash, so a relay's retry after a crash finds the row it
already made. `claim()` marks a row that is due `processing` (and counts the attempt)
before work; `defer()` puts it back to wait for a later try when its authentication met a
DNS error (not a crash: no attempt is counted); `earlier_copy()` tells the pipeline whether the row is a copy of a message it has seen (a
duplicate to file, or a mail moved back to decide again); `decide()` stores the decision,
the reply request and the pending mailbox action in one transaction; `fail()` returns the
row for another try or, on the third failure, quarantines it with its traceback.
`recover()` at start puts rows a crash left in `processing` back in line. The ledger lives
in the store database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from mailbot.store.schema import ledger, ledger_notices, utc
from parsers.headers import decode_header_text, raw_header

from . import requests
from .claims import MAX_ATTEMPTS, Claims
from .copies import Copies
from .entry import ENTRY_COLUMNS, Entry, LedgerState, RawPurged, Receipt, ReplyRequest, entry_of
from .listing import listing
from .spool import RawStore
from .sync import MailboxSync

# A decision record (`mailbot.pipeline.records.DecisionRecord`): the ledger stores it as JSON
# and knows no more of its keys.
R = TypeVar("R", bound=Mapping[str, Any])


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


def _new_id(conn: Connection, values: dict[str, Any]) -> int:
    key = conn.execute(insert(ledger).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def received_since(conn: Connection, mailboxes: Iterable[str], since: datetime) -> list[Entry]:
    """The rows of `mailboxes` received at or after `since` (what a digest reports)."""
    query = select(*ENTRY_COLUMNS).where(ledger.c.mailbox.in_(list(mailboxes)),
                                         ledger.c.received_at >= since)
    return [entry_of(row._mapping) for row in conn.execute(query)]


def entry_by_id(conn: Connection, entry_id: int) -> Entry | None:
    """One row, by its id."""
    row = conn.execute(select(*ENTRY_COLUMNS).where(ledger.c.id == entry_id)).first()
    return entry_of(row._mapping) if row else None


def oldest_waiting(conn: Connection) -> datetime | None:
    """When the oldest message not yet decided (received or processing) came in."""
    return min(oldest_waiting_by_mailbox(conn).values(), default=None)


def oldest_waiting_by_mailbox(conn: Connection) -> dict[str, datetime]:
    """Mailbox → when its oldest message not yet decided came in (mailboxes with one)."""
    query = (select(ledger.c.mailbox, func.min(ledger.c.received_at))
             .where(ledger.c.state.in_((LedgerState.RECEIVED, LedgerState.PROCESSING)))
             .group_by(ledger.c.mailbox))
    return {mailbox: utc(first) for mailbox, first in conn.execute(query)}


class Ledger(Claims, Copies, MailboxSync):
    """The ledger table's owner (with `requests` for the reply requests it stores): intake,
    claims and decisions here; copies of a message (`Copies`) and IMAP sync state
    (`MailboxSync`) in their own modules."""

    def __init__(self, engine: Engine, spool: RawStore[Any]) -> None:
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
        (SMTP/LMTP) the same bytes in the same mailbox are the same row.

        A purge may have taken the spool file away between `put` (which found it) and the
        row's commit: the file is written again once the row is there (`RawStore.keep`). A row
        found again whose raw mail was purged has it back (a later purge takes it again)."""
        digest, name = self.spool.put(raw)
        receipt = self._record(mailbox, raw, digest, name, uidvalidity, uid, reply_wanted, now)
        self.spool.keep(name, raw)
        if not receipt.new:
            with self.engine.begin() as conn:
                conn.execute(update(ledger).where(ledger.c.id == receipt.id,
                                                  ledger.c.purged_at.is_not(None))
                             .values(purged_at=None))
        return receipt

    def _record(self, mailbox: str, raw: bytes, digest: str, name: str, uidvalidity: int | None,
                uid: int | None, reply_wanted: bool, now: datetime | None) -> Receipt:
        message_id, sender, subject = _headers(raw)
        values = dict(
            mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, sha256=digest,
            # A blank Message-ID is none: `same_message` looks for no copy of it, so it must
            # not meet another row's blank one in the unique (Message-ID, body) index either.
            spool_name=name, size=len(raw), message_id=message_id or None, sender=sender,
            subject=subject, received_at=now or datetime.now(UTC), state=LedgerState.RECEIVED,
            attempts=0, action_state="none", reply_wanted=reply_wanted, deferrals=0,
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
            row_id = _new_id(conn, values)
        return Receipt(row_id, True)

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
                row_id = _new_id(conn, values)
        except IntegrityError:
            # The same bytes arrived on another connection at the same moment.
            with self.engine.connect() as conn:
                found = conn.execute(same).scalar()
            if found is None:
                raise
            return Receipt(found, False)
        return Receipt(row_id, True)

    # -- processing -------------------------------------------------------------------
    def defer(self, entry_id: int, *, until: datetime, reason: str,
              attempt: int | None = None) -> bool:
        """Put a claimed row back to wait until `until` (its authentication met a DNS
        `temperror`, which is not the message's fault): `received` again, its `deferrals`
        counted and the claim's attempt given back, so waiting never leads to quarantine.
        `reason` is kept as the row's last error. False when the claim is no longer ours."""
        claimed = [ledger.c.id == entry_id, ledger.c.state == LedgerState.PROCESSING]
        if attempt is not None:
            claimed.append(ledger.c.attempts == attempt)
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(ledger)
                .where(*claimed)
                .values(state=LedgerState.RECEIVED, not_before=until,
                        deferrals=ledger.c.deferrals + 1, attempts=ledger.c.attempts - 1,
                        last_error=reason[-20000:])
            ).rowcount)

    def decide(
        self,
        entry_id: int,
        decision: R,
        reply: ReplyRequest | None,
        action: str | None,
        now: datetime | None = None,
        attempt: int | None = None,
        body_sha256: str | None = None,
        extra: Callable[[Connection, R, datetime], str | None] | None = None,
        copy_of: int | None = None,
        subject: str | None = None,
    ) -> str | None:
        """Record the decision, its reply request and the pending mailbox action at once;
        returns the mailbox action recorded.

        `attempt` is the claim's attempt number: a claim that went stale (another process
        recovered and re-claimed the row) cannot decide it a second time. `extra` writes
        what else the decision causes (the contractor side's submissions) in the same
        transaction, may complete `decision`, and returns the mailbox action to use.
        `body_sha256` marks the message as the first of its Message-ID and body; `copy_of`
        names the first row of the message on a later copy (`Earlier.head`); `subject`, when
        given, replaces the listing's subject (the decision masked a key typed there)."""
        now = now or datetime.now(UTC)
        claimed = [ledger.c.id == entry_id, ledger.c.state == LedgerState.PROCESSING]
        if attempt is not None:
            claimed.append(ledger.c.attempts == attempt)
        with self.engine.begin() as conn:
            if extra is not None:
                action = extra(conn, decision, now)
            done = conn.execute(
                update(ledger)
                .where(*claimed)
                .values(
                    state=LedgerState.DECIDED,
                    decided_at=now,
                    decision=json.dumps(decision, ensure_ascii=False, default=str),
                    action=action,
                    action_state="pending" if action else "none",
                    last_error=None,
                    body_sha256=body_sha256,
                    copy_of=copy_of,
                    **listing(decision),  # issuer, status, outcomes, folder
                    **({"subject": subject} if subject is not None else {}),
                )
            ).rowcount
            if not done:
                raise RuntimeError(f"ledger row {entry_id} is not being processed")
            found = _notices(decision)
            conn.execute(delete(ledger_notices).where(ledger_notices.c.ledger_id == entry_id))
            if found:
                conn.execute(insert(ledger_notices), [{"ledger_id": entry_id, **n}
                                                      for n in found])
            if reply is not None:
                requests.store(conn, entry_id, reply, now)
        return action

    def fail(self, entry_id: int, error: str, attempt: int | None = None) -> str:
        """Record a crash of the pipeline; returns the new state (`received` or `quarantined`,
        or the row's state unchanged when the claim is no longer ours)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(ledger.c.attempts, ledger.c.state).where(ledger.c.id == entry_id)
            ).one()
            if row.state != LedgerState.PROCESSING or (attempt is not None and row.attempts != attempt):
                return str(row.state)
            state = LedgerState.QUARANTINED if row.attempts >= MAX_ATTEMPTS else LedgerState.RECEIVED
            conn.execute(
                update(ledger)
                .where(ledger.c.id == entry_id, ledger.c.state == LedgerState.PROCESSING)
                .values(state=state, last_error=error[-20000:])
            )
        return state

    def retry(self, entry_id: int, conn: Connection | None = None) -> bool:
        """Give a quarantined row three fresh attempts; False when it is not quarantined
        (retried meanwhile). With `conn`, in the caller's transaction (the console writes
        its audit entry in the same commit)."""
        change = (update(ledger)
                  .where(ledger.c.id == entry_id, ledger.c.state == LedgerState.QUARANTINED)
                  .values(state=LedgerState.RECEIVED, attempts=0))
        if conn is not None:
            return bool(conn.execute(change).rowcount)
        with self.engine.begin() as own:
            return bool(own.execute(change).rowcount)

    # -- mailbox actions --------------------------------------------------------------
    def pending_actions(self, mailbox: str, limit: int = 500) -> list[Entry]:
        query = (
            select(*ENTRY_COLUMNS)
            .where(ledger.c.mailbox == mailbox, ledger.c.action_state == "pending")
            .order_by(ledger.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [entry_of(row._mapping) for row in conn.execute(query)]

    def action_done(self, entry_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ledger).where(ledger.c.id == entry_id).values(action_state="done"))

    # -- reading ----------------------------------------------------------------------
    def get(self, entry_id: int) -> Entry | None:
        with self.engine.connect() as conn:
            return entry_by_id(conn, entry_id)

    def entries(self, state: str | None = None, limit: int = 1000) -> list[Entry]:
        query = select(*ENTRY_COLUMNS).order_by(ledger.c.id).limit(limit)
        if state:
            query = query.where(ledger.c.state == state)
        with self.engine.connect() as conn:
            return [entry_of(row._mapping) for row in conn.execute(query)]

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

    def raw(self, entry: Entry) -> bytes:
        """The row's raw mail; `RawPurged` once retention removed it."""
        if entry.purged_at is not None:
            raise RawPurged(entry.id, entry.purged_at)
        return self.spool.read(entry.spool_name)


def _notices(decision: Any) -> list[dict[str, str | None]]:
    """The notices of a decision record, for `ledger_notices` (the console's search)."""
    found = decision.get("notices") if isinstance(decision, dict) else None
    rows: list[dict[str, str | None]] = []
    for notice in found or []:
        number = notice.get("guarantee_number") if isinstance(notice, dict) else None
        if not isinstance(number, str) or not number:
            continue
        project, contractor = notice.get("project_name"), notice.get("contractor")
        rows.append({"guarantee_number": number[:40],
                     "project_name": project if isinstance(project, str) else None,
                     "contractor": contractor if isinstance(contractor, str) else None})
    return rows

"""The `outbox` table's rows, and the checks every message passes before it is queued.

`OutboxRow` is one row; `Change` is what the outbox tells its listeners when a row changes
state (sent, failed for good, queued again, cancelled), inside the transaction that changes
it, so that what the row carries out (a reply request, a submission) follows in the same
commit. Datetimes are stored in UTC; a failed row's `next_attempt_at` is the moment it
failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from mailbot.store.schema import outbox, utc


class OutboxKind(StrEnum):
    """What an outbox row carries."""

    REPLY = "reply"
    DIGEST = "digest"
    ALERT = "alert"
    SUBMISSION = "submission"


class OutboxState(StrEnum):
    """queued → sent | failed | cancelled (a failed row may be queued again)."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


KINDS: tuple[str, ...] = tuple(kind.value for kind in OutboxKind)
STATES: tuple[str, ...] = tuple(state.value for state in OutboxState)


@dataclass(frozen=True)
class StaffMail:
    """A rendered mail for the staff, queued in the transaction of what caused it."""

    to_addrs: list[str]
    raw: bytes
    message_id: str
    subject: str


@dataclass(frozen=True)
class OutboxRow:
    """One `outbox` row; `raw` only when asked for."""

    id: int
    kind: str
    reply_request_id: int | None
    ledger_id: int | None
    message_id: str
    to_addrs: str
    subject: str | None
    state: str
    immediate: bool
    attempts: int
    next_attempt_at: datetime
    deadline: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    window: str | None = None  # a named send window (an issuer's), None: the default one
    claimed_at: datetime | None = None  # set while a flush is sending it
    purged_at: datetime | None = None  # when retention purged its body (`raw` is then None)
    raw: bytes | None = None

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in self.to_addrs.split(",") if a.strip()]

    @property
    def failed_at(self) -> datetime | None:
        """When a failed row failed: the time of the flush that gave up on it."""
        return self.next_attempt_at if self.state == "failed" else None


@dataclass(frozen=True)
class Change:
    """A row's new state, as its listeners hear of it (in the transaction that sets it)."""

    row: OutboxRow  # as it was before the change
    state: str  # sent | failed | queued (a retry) | cancelled
    at: datetime | None  # when (None for a cancellation)
    reason: str | None = None  # failed: the error


# Told of every change of a row's state, with the Connection of the transaction it is in.
Listener = Callable[[Connection, Change], None]
# Asked before a failed row goes back in line; False keeps it failed.
ResendCheck = Callable[[Connection, OutboxRow], bool]


@dataclass
class FlushReport:
    sent: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)  # temporary failure, will retry
    failed: list[int] = field(default_factory=list)  # permanent, or past the deadline
    waiting: int = 0  # due but not tried: window closed, or the connection was lost
    error: str | None = None  # the connection could not be opened


ROW_COLUMNS = [outbox.c[name] for name in OutboxRow.__dataclass_fields__ if name != "raw"]
_DATETIMES = ("next_attempt_at", "deadline", "created_at", "sent_at", "claimed_at", "purged_at")


def state_counts(conn: Connection) -> dict[str, int]:
    """Outbox state → how many rows are in it."""
    return {state: count for state, count in conn.execute(
        select(outbox.c.state, func.count()).group_by(outbox.c.state))}


def aware_utc(dt: datetime) -> datetime:
    """`dt` in UTC; a naive datetime is refused (the clock is always given, with its zone)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"outbox: {dt!r} has no time zone")
    return dt.astimezone(UTC)


def outbox_row(mapping: Any) -> OutboxRow:
    values = dict(mapping)
    for name in _DATETIMES:
        values[name] = None if values[name] is None else utc(values[name])
    values["immediate"] = bool(values["immediate"])
    if values.get("raw") is not None:
        values["raw"] = bytes(values["raw"])
    return OutboxRow(**values)


def message_headers(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """(envelope sender from `From:`, Message-ID, decoded Subject) of a rendered message."""
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    addresses = [addr for _name, addr in getaddresses(headers.get_all("From", [])) if addr]
    message_id = headers.get("Message-ID")
    subject = headers.get("Subject")
    return (
        addresses[0] if addresses else None,
        str(message_id).strip() if message_id is not None else None,
        str(subject) if subject is not None else None,
    )


def checked_subject(raw: bytes, message_id: str) -> str | None:
    """The subject of `raw`, after checking it carries `message_id` and a From address."""
    sender, found_id, subject = message_headers(raw)
    if sender is None:
        raise ValueError("the rendered message has no From address (the envelope sender)")
    if found_id != message_id.strip():
        raise ValueError(
            f"the rendered message's Message-ID {found_id!r} is not the chosen {message_id!r}")
    return subject


def checked_recipients(kind: str, to_addrs: list[str]) -> list[str]:
    """The bare addresses of a row of `kind`, or ValueError."""
    if kind not in KINDS:
        raise ValueError(f"outbox kind must be one of {', '.join(KINDS)}, not {kind!r}")
    addresses = [a.strip() for a in to_addrs if a.strip()]
    if not addresses:
        raise ValueError("an outbox message needs at least one recipient")
    if any("," in a for a in addresses):
        raise ValueError(f"recipients must be bare addresses: {addresses!r}")
    return addresses

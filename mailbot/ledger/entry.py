"""The ledger's records: a received message's row (`Entry`), what `receive()` returns, how a
row relates to earlier copies of its message, and the reply request a decision stores."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from mailbot.store.schema import ledger, utc


class LedgerState(StrEnum):
    """A message's row: received → processing → decided → replied, or quarantined after
    `MAX_ATTEMPTS` crashes (with the traceback). A row whose authentication must wait for
    DNS goes from processing back to received, with a `not_before` (`Ledger.defer`)."""

    RECEIVED = "received"
    PROCESSING = "processing"
    DECIDED = "decided"
    REPLIED = "replied"
    QUARANTINED = "quarantined"


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
    purged_at: datetime | None = None  # when its raw mail left the spool ([retention])
    # Authentication deferrals (a DNS `temperror`): how often the row was put back to wait,
    # and until when it waits (None once claimed again).
    deferrals: int = 0
    not_before: datetime | None = None

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
        return (self.state in (LedgerState.DECIDED, LedgerState.REPLIED) and record is not None
                and "duplicate_of" not in record)


class RawPurged(LookupError):
    """The raw mail of a ledger row was purged by retention: its decision and audit trail
    stay, the bytes are gone."""

    def __init__(self, entry_id: int, purged_at: datetime) -> None:
        super().__init__(f"ledger row {entry_id}: its raw mail was purged on "
                         f"{purged_at:%Y-%m-%d} ([retention] raw_days); the decision is kept")
        self.entry_id = entry_id
        self.purged_at = purged_at


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


ENTRY_COLUMNS = [ledger.c[name] for name in Entry.__dataclass_fields__]


def entry_of(mapping: Any) -> Entry:
    """The `Entry` of a row selected with `ENTRY_COLUMNS`."""
    values = dict(mapping)
    values["received_at"] = utc(values["received_at"])
    for name in ("purged_at", "not_before"):
        if values.get(name) is not None:
            values[name] = utc(values[name])
    return Entry(**values)

"""What waits and what is stuck, per mailbox: the figures `mailbot status` shows.

Waiting: messages not yet decided (received, processing), messages whose authentication
waits for DNS (deferred after a `temperror`, with the earliest time one is tried again),
decided messages not yet filed in
their mailbox (the move or keyword still pending), reply requests not yet rendered
(stored) and outgoing mail not yet sent (outbox rows queued: replies, submissions, alerts).
Stuck, waiting for a person: quarantined messages, reply requests that could not be
rendered (failed, with their error) and outgoing mail that failed for good. The backlog is
both, so "backlog 0" means nothing waits and nothing is stuck. Outbox rows that belong to no
received message (digests, some alerts) are counted under `OUTGOING`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from mailbot.store.schema import ledger, outbox, reply_requests, utc

OUTGOING = "(outgoing)"
DNS_WAIT = "waiting for DNS"
WAITING = ("to decide", DNS_WAIT, "to file", "replies to render", "mail to send")
STUCK = ("quarantined", "replies not rendered", "mail failed")


@dataclass
class Backlog:
    waiting: dict[str, int] = field(default_factory=dict)
    stuck: dict[str, int] = field(default_factory=dict)
    retry_at: datetime | None = None  # the earliest not_before of the rows waiting for DNS

    @property
    def total(self) -> int:
        return sum(self.waiting.values()) + sum(self.stuck.values())

    def add(self, part: dict[str, int], label: str, count: int) -> None:
        if count:
            part[label] = part.get(label, 0) + count

    def text(self) -> str:
        """``backlog 3 (waiting: mail to send 1; stuck: quarantined 2)``; rows waiting for
        DNS say until when: ``waiting for DNS 1 until 2026-07-01T10:05:00+00:00``."""
        parts = [f"{name}: " + ", ".join(f"{k} {values[k]}{self._until(k)}"
                                         for k in order if k in values)
                 for name, values, order in (("waiting", self.waiting, WAITING),
                                             ("stuck", self.stuck, STUCK)) if values]
        return f"backlog {self.total}" + (f" ({'; '.join(parts)})" if parts else "")

    def _until(self, label: str) -> str:
        if label != DNS_WAIT or self.retry_at is None:
            return ""
        return f" until {self.retry_at.isoformat()}"

    def to_json(self) -> dict[str, object]:
        retry = {} if self.retry_at is None else {"dns_retry_at": self.retry_at.isoformat()}
        return {"backlog": self.total, "waiting": self.waiting, "stuck": self.stuck, **retry}


def _counts(conn: Connection) -> list[tuple[str | None, str, int]]:
    """(mailbox, what, count) rows: `what` is a ledger state, ``unfiled``, or a reply
    request's or an outbox row's state after ``request `` or ``outbox ``."""
    held = ("received", "processing", "quarantined")
    deferred = and_(ledger.c.state == "received", ledger.c.not_before.is_not(None))
    unrendered = and_(reply_requests.c.state == "failed", reply_requests.c.error.is_not(None))
    queries = (  # (prefix of `what`, rows of mailbox, state, count)
        ("", select(ledger.c.mailbox, ledger.c.state, func.count())
         .where(ledger.c.state.in_(held), ~deferred).group_by(ledger.c.mailbox, ledger.c.state)),
        ("deferred", select(ledger.c.mailbox, func.min(ledger.c.state), func.count())
         .where(deferred).group_by(ledger.c.mailbox)),
        # (the state column is only there to make three columns: "unfiled", "deferred" say
        # it all)
        ("unfiled", select(ledger.c.mailbox, func.min(ledger.c.state), func.count())
         .where(ledger.c.action_state == "pending", ledger.c.state.notin_(held))
         .group_by(ledger.c.mailbox)),
        ("request ", select(ledger.c.mailbox, reply_requests.c.state, func.count())
         .join(ledger, ledger.c.id == reply_requests.c.ledger_id)
         .where((reply_requests.c.state == "stored") | unrendered)
         .group_by(ledger.c.mailbox, reply_requests.c.state)),
        ("outbox ", select(ledger.c.mailbox, outbox.c.state, func.count())
         .select_from(outbox.outerjoin(ledger, ledger.c.id == outbox.c.ledger_id))
         .where(outbox.c.state.in_(("queued", "failed")))
         .group_by(ledger.c.mailbox, outbox.c.state)),
    )
    return [(mailbox, prefix if prefix in ("unfiled", "deferred") else prefix + state, count)
            for prefix, query in queries for mailbox, state, count in conn.execute(query)]


# what → (stuck, label)
_LABELS = {
    "received": (False, "to decide"),
    "processing": (False, "to decide"),
    "quarantined": (True, "quarantined"),
    "deferred": (False, DNS_WAIT),
    "unfiled": (False, "to file"),
    "request stored": (False, "replies to render"),
    "request failed": (True, "replies not rendered"),
    "outbox queued": (False, "mail to send"),
    "outbox failed": (True, "mail failed"),
}


def backlogs(conn: Connection) -> dict[str, Backlog]:
    """Mailbox (or `OUTGOING`) → its backlog; mailboxes with nothing at all are absent."""
    out: dict[str, Backlog] = {}
    for mailbox, what, count in _counts(conn):
        backlog = out.setdefault(mailbox or OUTGOING, Backlog())
        stuck, label = _LABELS[what]
        backlog.add(backlog.stuck if stuck else backlog.waiting, label, count)
    for mailbox, first in conn.execute(
            select(ledger.c.mailbox, func.min(ledger.c.not_before))
            .where(ledger.c.state == "received", ledger.c.not_before.is_not(None))
            .group_by(ledger.c.mailbox)):
        out.setdefault(mailbox, Backlog()).retry_at = utc(first)
    return out


def total(parts: dict[str, Backlog]) -> Backlog:
    whole = Backlog()
    for backlog in parts.values():
        for label, count in backlog.waiting.items():
            whole.add(whole.waiting, label, count)
        for label, count in backlog.stuck.items():
            whole.add(whole.stuck, label, count)
        if backlog.retry_at is not None:
            whole.retry_at = min(filter(None, (whole.retry_at, backlog.retry_at)))
    return whole

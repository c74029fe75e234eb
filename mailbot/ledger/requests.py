"""The `reply_requests` table: the reply a decision asks for, until the outbox has sent it.

A request is `stored` with its decision, `queued` once the outbox holds its rendered mail,
then follows that mail (`sent`, `failed`, `cancelled`, back to `queued` on a retry). It ends
`suppressed` when too many replies went to its address, and `failed` with its `error` when
it cannot be rendered (`retry` puts it back once the cause is fixed). Every function takes
the Connection of the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from mailbot.store.schema import ledger, reply_requests, utc

from .entry import LedgerState, ReplyRequest


@dataclass(frozen=True)
class ReplyRow:
    """One `reply_requests` row, its context decoded."""

    id: int
    ledger_id: int
    to_addr: str
    template: str
    context: dict[str, Any]
    state: str
    created_at: datetime
    error: str | None = None  # why it could not be rendered (state `failed`)
    failed_at: datetime | None = None


def _reply_row(mapping: Any) -> ReplyRow:
    values = dict(mapping)
    values["context"] = json.loads(values["context"])
    values["created_at"] = utc(values["created_at"])
    failed_at = values.get("failed_at")
    values["failed_at"] = None if failed_at is None else utc(failed_at)
    return ReplyRow(**values)


def store(conn: Connection, ledger_id: int, reply: ReplyRequest, now: datetime) -> None:
    """Store the reply a decision asks for (in the transaction that records it)."""
    conn.execute(insert(reply_requests).values(
        ledger_id=ledger_id, to_addr=reply.to_addr, template=reply.template,
        context=json.dumps(reply.context, ensure_ascii=False, default=str),
        state="stored", created_at=now,
    ))


def stored_ids(conn: Connection) -> list[int]:
    """The requests waiting to be rendered, oldest first."""
    return list(conn.execute(
        select(reply_requests.c.id)
        .where(reply_requests.c.state == "stored")
        .order_by(reply_requests.c.id)
    ).scalars().all())


def take(conn: Connection, request_id: int) -> ReplyRow | None:
    """Take a stored request for rendering (now `queued`); None when another worker has it.
    A concurrent worker waits on the update, then finds it gone."""
    taken = conn.execute(
        update(reply_requests)
        .where(reply_requests.c.id == request_id, reply_requests.c.state == "stored")
        .values(state="queued")
    ).rowcount
    if not taken:
        return None
    return _reply_row(conn.execute(
        select(reply_requests).where(reply_requests.c.id == request_id)).one()._mapping)


def suppress(conn: Connection, request_id: int) -> None:
    """Held back by the per-address rate limit: never sent, listed in the digest."""
    conn.execute(update(reply_requests).where(reply_requests.c.id == request_id)
                 .values(state="suppressed"))


def unrenderable(conn: Connection, request_id: int, error: str, now: datetime) -> None:
    """The request cannot be rendered: `failed` with `error`, until `retry`."""
    conn.execute(update(reply_requests).where(reply_requests.c.id == request_id)
                 .values(state="failed", error=error, failed_at=now))


def follow_outbox(conn: Connection, request_id: int | None, ledger_id: int | None,
                  state: str) -> None:
    """What the outbox calls when the mail of reply request `request_id` (of ledger row
    `ledger_id`) changes to `state`: the request follows its mail, and a decided message
    whose reply went out is `replied`. (Plain values, so the ledger knows nothing of the
    outbox's records: the outbox depends on this table, not the other way round.)"""
    if request_id is None:
        return
    conn.execute(update(reply_requests).where(reply_requests.c.id == request_id)
                 .values(state=state))
    if state == "sent" and ledger_id is not None:
        conn.execute(update(ledger)
                     .where(ledger.c.id == ledger_id, ledger.c.state == LedgerState.DECIDED)
                     .values(state=LedgerState.REPLIED))


def requests(conn: Connection, state: str | None = None) -> list[ReplyRow]:
    """Reply requests (oldest first), e.g. the `failed` ones no outbox row stands for."""
    query = select(reply_requests).order_by(reply_requests.c.id)
    if state is not None:
        query = query.where(reply_requests.c.state == state)
    return [_reply_row(row._mapping) for row in conn.execute(query)]


def get(conn: Connection, request_id: int) -> ReplyRow | None:
    """One request, by its id."""
    row = conn.execute(select(reply_requests).where(reply_requests.c.id == request_id)).first()
    return _reply_row(row._mapping) if row else None


def retry(conn: Connection, request_id: int) -> bool:
    """A request that could not be rendered is rendered again at the next run (after the
    template or the configuration was fixed); False if it is not such a request."""
    return bool(conn.execute(
        update(reply_requests)
        .where(reply_requests.c.id == request_id, reply_requests.c.state == "failed",
               reply_requests.c.error.is_not(None))
        .values(state="stored", error=None, failed_at=None)
    ).rowcount)


def cancel(conn: Connection, request_id: int) -> bool:
    """A request not yet rendered, or that could not be, will never be sent."""
    return bool(conn.execute(
        update(reply_requests)
        .where(reply_requests.c.id == request_id,
               (reply_requests.c.state == "stored")
               | ((reply_requests.c.state == "failed") & reply_requests.c.error.is_not(None)))
        .values(state="cancelled")
    ).rowcount)


def suppressed_since(conn: Connection, since: datetime) -> list[ReplyRow]:
    """Requests the rate limit held back since `since` (a person must answer them)."""
    return [_reply_row(row._mapping) for row in conn.execute(
        select(reply_requests).where(reply_requests.c.state == "suppressed",
                                     reply_requests.c.created_at >= since))]


def unrendered_since(conn: Connection, since: datetime, mailboxes: Iterable[str]
                     ) -> list[ReplyRow]:
    """Requests of messages in `mailboxes` that could not be rendered since `since`."""
    return [_reply_row(row._mapping) for row in conn.execute(
        select(reply_requests).join(ledger, ledger.c.id == reply_requests.c.ledger_id)
        .where(reply_requests.c.state == "failed", reply_requests.c.error.is_not(None),
               reply_requests.c.failed_at >= since, ledger.c.mailbox.in_(list(mailboxes))))]

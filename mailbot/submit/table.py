"""The `submissions` table: one row per notice submitted (or found unroutable) to an issuer.

A row is written with the decision of the notice's mail (`add`, or `resubmit` when the
notice comes again after a failure or a dispute), follows its outbox mail (`follow_outbox`,
the listener `mailbot.outgoing.outbox_for` registers: sent, failed for good, retried,
cancelled), and takes the issuer's answer (`record_answer`). Every function takes the
Connection of the caller's transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from mailbot.outbox import Change, OutboxRow
from mailbot.store.schema import submissions

log = logging.getLogger("mailbot.submit")

# Submissions an answer can be about ("queued": the answer came before the send was recorded).
ANSWERABLE = ("queued", "sent", "answered", "confirmed", "discrepancy", "failed")
# A submission follows its outbox row into a state only from these (once the issuer has
# answered, or the notice was submitted again, the row's fate no longer decides it).
_FOLLOWS = {"sent": ("queued",), "failed": ("queued",), "queued": ("failed",),
            "cancelled": ("queued", "failed")}
# Unauthenticated answers kept in a submission's answer JSON (the ledger keeps them all).
MAX_UNAUTHENTICATED = 10
# Still waiting for something, listed in the contractor's digest.
_OPEN = ("queued", "sent", "answered", "unroutable", "failed", "discrepancy")


def by_notice(conn: Connection, notice_hash: str) -> Row[Any] | None:
    """The submission of a notice, if any."""
    return conn.execute(select(submissions)
                        .where(submissions.c.notice_hash == notice_hash)).first()


def add(conn: Connection, notice_hash: str, values: dict[str, Any]) -> None:
    conn.execute(insert(submissions).values(notice_hash=notice_hash, reminders=0, **values))


def resubmit(conn: Connection, existing: Row[Any], values: dict[str, Any]) -> bool:
    """The notice's row starts again with `values` (the earlier Message-ID remembered);
    False when another pipeline changed the row meanwhile."""
    return bool(conn.execute(update(submissions).where(
        submissions.c.id == existing.id, submissions.c.state == existing.state,
        submissions.c.message_id == existing.message_id,
    ).values(
        **values, sent_at=None, answered_at=None, answer_ledger_id=None, answer=None,
        reminders=0, reminded_at=None,
        earlier_ids=" ".join(i for i in (existing.earlier_ids, existing.message_id) if i),
    )).rowcount)


def record_answer(conn: Connection, submission_id: int, values: dict[str, Any]) -> None:
    """An issuer's answer (or a bounce) settles a submission that can still be answered."""
    conn.execute(update(submissions).where(submissions.c.id == submission_id,
                                           submissions.c.state.in_(ANSWERABLE))
                 .values(**values))


def note_unauthenticated(conn: Connection, submission_id: int, entry: dict[str, Any]) -> None:
    """An answer that could not be proven to come from the issuer: kept in the submission's
    answer JSON (under "unauthenticated", the newest few) for a person; the state and an
    authentic answer already recorded stay as they are."""
    row = get(conn, submission_id)
    if row is None:
        return
    data = json.loads(row.answer) if row.answer else {"verdict": "unauthenticated"}
    data["unauthenticated"] = [*data.get("unauthenticated", []), entry][-MAX_UNAUTHENTICATED:]
    conn.execute(update(submissions).where(submissions.c.id == submission_id)
                 .values(answer=json.dumps(data, ensure_ascii=False)))


def by_message_id(conn: Connection, message_id: str) -> Row[Any] | None:
    """The answerable submission whose mail has this Message-ID (a proven bounce's)."""
    return conn.execute(select(submissions).where(
        submissions.c.message_id == message_id,
        submissions.c.state.in_(ANSWERABLE))).first()


def in_threads(conn: Connection, message_ids: Sequence[str]) -> list[Row[Any]]:
    """Answerable submissions whose mail (or an earlier one of their notice) is one of
    `message_ids`, oldest first."""
    return list(conn.execute(select(submissions).where(
        submissions.c.state.in_(ANSWERABLE),
        or_(submissions.c.message_id.in_(message_ids),
            *(submissions.c.earlier_ids.contains(i, autoescape=True) for i in message_ids)),
    ).order_by(submissions.c.id)))


def answerable_by_number(conn: Connection, numbers: Sequence[str]) -> list[Row[Any]]:
    """Answerable submissions of these guarantee numbers, oldest first."""
    return list(conn.execute(select(submissions).where(
        submissions.c.guarantee_number.in_(numbers),
        submissions.c.state.in_(ANSWERABLE)).order_by(submissions.c.id)))


def awaiting_answer(conn: Connection) -> list[Row[Any]]:
    """Sent submissions (no answer yet), oldest first."""
    return list(conn.execute(select(submissions).where(submissions.c.state == "sent")
                             .order_by(submissions.c.id)))


def reminded(conn: Connection, row: Row[Any], now: datetime) -> None:
    conn.execute(update(submissions).where(submissions.c.id == row.id)
                 .values(reminded_at=now, reminders=row.reminders + 1))


def open_or_answered_since(conn: Connection, since: datetime) -> list[Row[Any]]:
    """What the contractor's digest lists: every open submission and those answered since."""
    return list(conn.execute(select(submissions).where(or_(
        submissions.c.state.in_(_OPEN), submissions.c.answered_at >= since))
        .order_by(submissions.c.id)))


def follow_outbox(conn: Connection, change: Change) -> None:
    """The outbox listener of this table: a submission follows its mail's state."""
    if change.row.kind != "submission":
        return
    values: dict[str, Any] = {"state": change.state}
    if change.state == "sent":
        values["sent_at"] = change.at
    elif change.state in ("failed", "queued"):
        values["reason"] = change.reason
    conn.execute(update(submissions)
                 .where(submissions.c.message_id == change.row.message_id,
                        submissions.c.state.in_(_FOLLOWS[change.state]))
                 .values(**values))


def may_resend(conn: Connection, row: OutboxRow) -> bool:
    """A failed submission mail goes again only while it is its notice's submission."""
    if row.kind != "submission" or conn.execute(
            select(submissions.c.id).where(submissions.c.message_id == row.message_id)
    ).first() is not None:
        return True
    log.warning("outbox row %d is a submission the notice's later submission replaced: "
                "not sent again", row.id, extra={"outbox_id": row.id, "message_id": row.message_id})
    return False


def listing(conn: Connection, state: str | None = None) -> list[Row[Any]]:
    """Every submission (in `state` only, when given), oldest first."""
    query = select(submissions).order_by(submissions.c.id)
    if state:
        query = query.where(submissions.c.state == state)
    return list(conn.execute(query))


def get(conn: Connection, submission_id: int) -> Row[Any] | None:
    return conn.execute(select(submissions).where(submissions.c.id == submission_id)).first()


def counts(conn: Connection) -> dict[str, int]:
    """State → how many submissions are in it."""
    return {state: count for state, count in conn.execute(
        select(submissions.c.state, func.count()).group_by(submissions.c.state))}

"""What an issuer's daily staff digest lists: the day's messages by status, those needing
review, quarantined ones, and every reply that did not reach its contractor (failed for
good, held back by the rate limit, or impossible to render)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mailbot.ledger import received_since, requests
from mailbot.outbox import Outbox
from mailbot.store.schema import utc


def digest_context(outbox: Outbox, issuer_name: str | None, mailboxes: Iterable[str],
                   since: datetime, now: datetime) -> dict[str, Any]:
    """The template context of one issuer's digest (its `mailboxes`, `since` to `now`)."""
    mailboxes = set(mailboxes)
    counts: dict[str, int] = {}
    needs_review: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    with outbox.engine.connect() as conn:
        entries = received_since(conn, mailboxes, since)
    for entry in entries:
        if entry.state == "quarantined":
            quarantined.append({"id": entry.id, "received_at": entry.received_at.isoformat(),
                                "sender": entry.sender, "subject": entry.subject})
            counts["quarantined"] = counts.get("quarantined", 0) + 1
            continue
        record = entry.record or {}
        status = record.get("status", entry.state)
        counts[status] = counts.get(status, 0) + 1
        if status == "discrepancy":
            needs_review.append({
                "received_at": entry.received_at.isoformat(), "sender": entry.sender,
                "subject": entry.subject, "outcomes": record.get("outcomes", []),
                "problems": [p["code"] for p in record.get("problems", [])],
            })
    failed = [
        {"to": r.to_addrs, "subject": r.subject, "error": r.last_error,
         "failed_at": utc(r.next_attempt_at).isoformat()}
        for r in outbox.failed_since(since)
    ]
    with outbox.engine.connect() as conn:
        # Replies held back by the per-address rate limit need a human too.
        for request in requests.suppressed_since(conn, since):
            failed.append({"to": request.to_addr, "subject": request.context.get("subject"),
                           "error": "not sent: too many replies to this address within an hour",
                           "failed_at": request.created_at.isoformat()})
        # And replies that could not be written at all (this issuer's mailboxes only).
        for request in requests.unrendered_since(conn, since, mailboxes):
            assert request.failed_at is not None
            failed.append({"to": request.to_addr, "subject": request.context.get("subject"),
                           "error": f"返信メールを作成できませんでした（返信依頼 {request.id}）: "
                                    f"{request.error}",
                           "failed_at": request.failed_at.isoformat()})
    return {"issuer": issuer_name, "period_start": since.isoformat(),
            "period_end": now.isoformat(), "counts": counts, "needs_review": needs_review,
            "quarantined": quarantined, "failed_replies": failed}

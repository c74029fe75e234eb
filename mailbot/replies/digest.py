"""What an issuer's daily staff digest lists: the day's messages by status, those needing
review, quarantined ones, and every reply that did not reach its contractor (failed for
good, held back by the rate limit, or impossible to render).

An address a route names in `notify` gets a digest of its own: the messages that route
matched, by status, and those needing review (what failed is for the issuer's staff)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mailbot.addresses import same_address
from mailbot.ledger import Entry, received_since, requests
from mailbot.outbox import Outbox
from mailbot.store.schema import utc


def notified(entry: Entry, address: str) -> bool:
    """A route that matched `entry` named `address` in its `notify`."""
    routing = (entry.record or {}).get("routing") or {}
    return any(same_address(str(a), address) for a in routing.get("notify") or ())


def digest_context(outbox: Outbox, issuer_name: str | None, mailboxes: Iterable[str],
                   since: datetime, now: datetime) -> dict[str, Any]:
    """The template context of one issuer's digest (its `mailboxes`, `since` to `now`)."""
    mailboxes = set(mailboxes)
    with outbox.engine.connect() as conn:
        entries = received_since(conn, mailboxes, since)
    return {"issuer": issuer_name, "notify": None, "period_start": since.isoformat(),
            "period_end": now.isoformat(), **_messages(entries),
            "failed_replies": _failed(outbox, mailboxes, since)}


def routed_context(outbox: Outbox, address: str, mailboxes: Iterable[str], since: datetime,
                   now: datetime) -> tuple[str | None, dict[str, Any]] | None:
    """The issuer and template context of the digest to a route's `notify` address: the
    messages routed to it; None when there were none."""
    with outbox.engine.connect() as conn:
        entries = [e for e in received_since(conn, set(mailboxes), since) if notified(e, address)]
    if not entries:
        return None
    issuer = ((entries[0].record or {}).get("routing") or {}).get("issuer")
    return issuer, {"issuer": None, "notify": address, "period_start": since.isoformat(),
                    "period_end": now.isoformat(), **_messages(entries),
                    "failed_replies": []}


def _messages(entries: Iterable[Entry]) -> dict[str, Any]:
    """Counts by status, the messages needing review and the quarantined ones."""
    counts: dict[str, int] = {}
    needs_review: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
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
    return {"counts": counts, "needs_review": needs_review, "quarantined": quarantined}


def _failed(outbox: Outbox, mailboxes: set[str], since: datetime) -> list[dict[str, Any]]:
    """Every reply that did not reach its contractor since `since`."""
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
    return failed

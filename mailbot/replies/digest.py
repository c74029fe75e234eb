"""What an issuer's daily staff digest lists: the day's messages by status, those needing
review, quarantined ones, and every reply that did not reach its contractor (failed for
good, held back by the rate limit, or impossible to render).

Each message listed carries its authentication verdict (`AuthVerdict.label_ja`), and the
digest counts the day's messages by verdict. A forged mail (DMARC fails under
p=quarantine/reject) and a throttled one got no reply: both are listed as needing a person,
whatever their status.

An address a route names in `notify` gets a digest of its own: the messages that route
matched, by status, and those needing review (what failed is for the issuer's staff)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mailbot.addresses import same_address
from mailbot.auth import AuthVerdict, Requirement
from mailbot.ledger import Entry, received_since, requests
from mailbot.outbox import Outbox
from mailbot.store.schema import utc


def notified(entry: Entry, address: str) -> bool:
    """A route that matched `entry` named `address` in its `notify`."""
    routing = (entry.record or {}).get("routing") or {}
    return any(same_address(str(a), address) for a in routing.get("notify") or ())


def digest_context(outbox: Outbox, issuer_name: str | None, mailboxes: Iterable[str],
                   since: datetime, now: datetime,
                   require: Requirement | str = Requirement.DMARC) -> dict[str, Any]:
    """The template context of one issuer's digest (its `mailboxes`, `since` to `now`;
    `require`: what counts as authenticated for its senders)."""
    mailboxes = set(mailboxes)
    with outbox.engine.connect() as conn:
        entries = received_since(conn, mailboxes, since)
    return {"issuer": issuer_name, "notify": None, "period_start": since.isoformat(),
            "period_end": now.isoformat(), **_messages(entries, require),
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


# Why a mail that got no reply needs a person (the reply was withheld, not failed).
WITHHELD_JA = {
    "forged": "なりすましの疑いがあるため、返信していません。送信元へ別の方法でご確認ください。",
    "throttled": "認証キーの確認失敗が続いた送信者のため、返信していません。",
}


def verdict_of(record: dict[str, Any]) -> AuthVerdict | None:
    """The authentication verdict a decision record stored, or None (nothing checked)."""
    stored = record.get("authentication")
    if not isinstance(stored, dict):
        return None
    try:
        return AuthVerdict.from_json_obj(stored)
    except (TypeError, ValueError):  # a record written by another release
        return None


def _withheld(record: dict[str, Any], verdict: AuthVerdict | None) -> str | None:
    if record.get("reply") is not None:
        return None
    if verdict is not None and verdict.forged:
        return WITHHELD_JA["forged"]
    if "throttled" in (record.get("outcomes") or ()):
        return WITHHELD_JA["throttled"]
    return None


def _messages(entries: Iterable[Entry],
              require: Requirement | str = Requirement.DMARC) -> dict[str, Any]:
    """Counts by status and by authentication verdict, the messages needing review and
    the quarantined ones."""
    counts: dict[str, int] = {}
    auth_counts: dict[str, int] = {}
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
        verdict = verdict_of(record)
        label = verdict.label_ja(require) if verdict is not None else None
        if label is not None:
            auth_counts[label] = auth_counts.get(label, 0) + 1
        withheld = _withheld(record, verdict)
        if status == "discrepancy" or withheld:
            needs_review.append({
                "received_at": entry.received_at.isoformat(), "sender": entry.sender,
                "subject": entry.subject, "outcomes": record.get("outcomes", []),
                "problems": [p["code"] for p in record.get("problems", [])],
                "authentication": label, "withheld": withheld,
            })
    return {"counts": counts, "needs_review": needs_review, "quarantined": quarantined,
            "auth_counts": auth_counts}


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

"""A message decided again (a mail a person moved back into the watched folder): linked to
the decision it makes again, and answered only when the outcome changed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailbot.ledger import Earlier, ReplyRequest
from mailbot.pipeline.records import DecisionRecord


def _verdict(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a reply tells the sender: the status, the outcome of each notice, the problems."""
    return (
        record.get("status"),
        sorted(record.get("outcomes") or []),
        sorted((v.get("guarantee_number") or "", sorted(v.get("outcomes") or []))
               for v in record.get("verification") or []),
        sorted(p.get("code") or "" for p in record.get("problems") or []),
    )


def redecided(record: DecisionRecord, reply: ReplyRequest | None,
               earlier: Earlier) -> ReplyRequest | None:
    """Link a re-decision to the decision it makes again; keep its reply only when the
    outcome changed (the sender has the earlier answer, and it still holds)."""
    before = earlier.decision or {}
    changed = _verdict(record) != _verdict(before)
    record["redecision_of"] = earlier.of
    record["earlier"] = {"status": before.get("status"), "outcomes": before.get("outcomes", [])}
    record["outcome_changed"] = changed
    if changed or reply is None:
        return reply
    record["reply"] = None
    record["reply_skipped"] = f"outcome unchanged since decision {earlier.of}"
    return None

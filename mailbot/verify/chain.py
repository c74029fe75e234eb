"""Run an issuer's rule chain over a notice's claim and record the result.

The chain is an ordered list of rule names (docs/contributing.md), read top to bottom; every rule
that runs leaves a line in the trail, hit or not. Failed key checks (unknown number, wrong
key) are recorded for the throttle after the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailbot.errors import UsageError
from mailbot.store import Store

from .outcomes import Outcome
from .policy import IssuerPolicy
from .rule import Claim, Context, Difference
from .rules import RULES

FAILED_KEY_OUTCOMES = (Outcome.UNKNOWN_NUMBER, Outcome.KEY_MISMATCH)


@dataclass
class VerifyResult:
    guarantee_number: str
    outcomes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.outcomes == ["verified"]

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "guarantee_number": self.guarantee_number,
            "outcomes": self.outcomes,
            "reasons": self.reasons,
            "rules": self.rules,
        }


def check_chain(names: tuple[str, ...]) -> None:
    """A chain must check the number and the key before any rule that speaks about the
    guarantee, with the throttle (if any) before the key: otherwise a wrong key could verify,
    or names could be guessed without the key."""
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise UsageError(f"unknown verification rule {unknown[0]!r} (known: {', '.join(RULES)})")
    for required in ("number_exists", "key_matches"):
        if required not in names:
            raise UsageError(f"the chain must contain {required!r}")
    order = list(names)
    key_at = order.index("key_matches")
    if order.index("number_exists") > key_at:
        raise UsageError("'number_exists' must come before 'key_matches'")
    early = [n for n in order[:key_at] if n not in ("throttle", "number_exists")]
    if early:
        raise UsageError(f"{early[0]!r} must come after 'key_matches'")
    if "throttle" in order and order.index("throttle") > key_at:
        raise UsageError("'throttle' must come before 'key_matches'")


def verify(
    store: Store, claim: Claim, policy: IssuerPolicy, record_failures: bool = True
) -> VerifyResult:
    """Run the chain; `record_failures=False` (replays, dry runs) leaves the throttle alone."""
    check_chain(policy.chain)
    now = claim.at or datetime.now(UTC)
    result = VerifyResult(claim.guarantee_number)
    limits = policy.throttle
    with store.engine.connect() as conn:
        found, failures = store.versions_and_failures(
            claim.guarantee_number,
            now - limits.number_window,
            claim.sender,
            now - limits.sender_window,
            conn,
        )
        ctx = Context(claim, policy, store, found, now, conn=conn, failures=failures)
        for name in policy.chain:
            verdict = RULES[name].check(ctx)
            result.rules.append({"rule": name, "hit": verdict.hit})
            if verdict.hit:
                assert verdict.outcome and verdict.reason
                result.outcomes.append(verdict.outcome)
                result.reasons.append(verdict.reason)
                result.differences.extend(verdict.differences)
            if verdict.stop:
                break
    if not result.outcomes:
        result.outcomes = ["verified"]
        result.reasons = [
            f"保証契約番号 {claim.guarantee_number} の電子保証を確認しました。"
        ]
    if record_failures and any(o in FAILED_KEY_OUTCOMES for o in result.outcomes):
        store.record_key_failure("number", claim.guarantee_number, now)
        if claim.sender:
            store.record_key_failure("sender", claim.sender, now)
    return result

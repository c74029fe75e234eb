"""Run an issuer's rule chain over a notice's claim and record the result.

The chain is an ordered list of rule names (docs/contributing.md), read top to bottom; every rule
that runs leaves a line in the trail, hit or not. The number and the key are always checked
first: a right key verifies whatever failures came before it (docs/security.md). The
`throttle` rule governs only what a failing claim gets: when the number or the key is wrong
and the sender (or the number) is over its limit, the claim's outcome is `throttled` alone —
the same for an unknown number and a wrong key, so it tells nothing. A failed key check
(unknown number, wrong key, throttled or not) is recorded after the chain, and the failures
recorded before it decide whether it is throttled.
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

# A throttled claim failed its key check too: it counts, so a sender guessing on stays over.
FAILED_KEY_OUTCOMES = (Outcome.UNKNOWN_NUMBER, Outcome.KEY_MISMATCH)


@dataclass
class VerifyResult:
    guarantee_number: str
    outcomes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    # A throttled claim: "sender" or "number" (which limit it is over), else None.
    throttled_by: str | None = None
    # This claim is the first over the limit in the window (the staff are told once).
    throttle_first: bool = False

    @property
    def throttled(self) -> bool:
        return self.throttled_by is not None

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
    guarantee: otherwise a wrong key could verify, or names could be guessed without the
    key. The throttle may stand anywhere: it is never run before the key (a right key is
    never refused), only for a claim whose number or key failed."""
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


def verify(
    store: Store, claim: Claim, policy: IssuerPolicy, record_failures: bool = True
) -> VerifyResult:
    """Run the chain; `record_failures=False` (replays, dry runs, forged mail) leaves the
    throttle's counts alone."""
    check_chain(policy.chain)
    now = claim.at or datetime.now(UTC)
    result = VerifyResult(claim.guarantee_number)
    with store.engine.connect() as conn:
        # The key's HMAC is computed for every claim, a known number or not.
        ctx = Context(claim, policy, store, store.versions(claim.guarantee_number, conn), now,
                      conn=conn, offered_hash=store.hash_key(claim.auth_key))
        for name in policy.chain:
            if name == "throttle":
                continue  # only for a failing claim, below
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
    if any(o in FAILED_KEY_OUTCOMES for o in result.outcomes):
        # The failure is recorded first, then the failures before it are counted: each
        # has its place in line, so of concurrent pipelines exactly one crosses a limit.
        mine = (store.record_key_failures(claim.guarantee_number, claim.sender, now)
                if record_failures else None)
        limits = policy.throttle
        ctx.failures = store.key_failures_since(
            claim.guarantee_number, now - limits.number_window, claim.sender,
            now - limits.sender_window, before=mine)
        if "throttle" in policy.chain:
            _throttle(ctx, result)
    return result


def _throttle(ctx: Context, result: VerifyResult) -> None:
    """A failing claim over a limit: its outcome becomes `throttled` alone (which of
    unknown number and wrong key it was is not said)."""
    verdict = RULES["throttle"].check(ctx)
    result.rules.append({"rule": "throttle", "hit": verdict.hit})
    if not verdict.hit:
        return
    assert verdict.outcome and verdict.reason
    by_number, by_sender = ctx.failures
    limits = ctx.policy.throttle
    over_sender = bool(ctx.claim.sender) and by_sender >= limits.per_sender
    result.throttled_by = "sender" if over_sender else "number"
    # Counted are the failures recorded before this one (throttled ones too): exactly
    # one claim finds the limit reached with nothing over it while the window holds them.
    result.throttle_first = (by_sender == limits.per_sender if over_sender
                             else by_number == limits.per_number)
    result.outcomes = [verdict.outcome]
    result.reasons = [verdict.reason]
    result.differences = []

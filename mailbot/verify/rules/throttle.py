"""throttle: a failing claim from a sender (or for a number) with too many failed key checks
is answered `throttled`, whether its number or its key was wrong.

`verify` runs it only after the number or the key failed: a right key is never refused,
whatever failures came before it (docs/security.md)."""

from __future__ import annotations

from ..rule import MISS, Context, Verdict

REASON = (
    "認証キーの確認に失敗した回数が上限に達したため、しばらくの間確認を停止しています。"
    "時間をおいて、最新の「認証キーのお知らせ」をご提出ください。"
)


class Throttle:
    name = "throttle"
    description = ("a failing claim is throttled when its sender or its guarantee number has "
                   "too many failed key checks")

    def check(self, ctx: Context) -> Verdict:
        limits = ctx.policy.throttle
        by_number, by_sender = ctx.failures  # counted over the policy's windows by `verify`
        if by_number >= limits.per_number or (
            ctx.claim.sender and by_sender >= limits.per_sender
        ):
            return Verdict(hit=True, outcome="throttled", reason=REASON, stop=True)
        return MISS

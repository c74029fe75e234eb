"""throttle: too many failed key checks from this sender or for this number: stop checking."""

from __future__ import annotations

from ..rule import MISS, Context, Verdict

REASON = (
    "認証キーの確認に失敗した回数が上限に達したため、しばらくの間確認を停止しています。"
    "時間をおいて、最新の「認証キーのお知らせ」をご提出ください。"
)


class Throttle:
    name = "throttle"
    description = "failed key checks per sender and per guarantee number stay under the limit"

    def check(self, ctx: Context) -> Verdict:
        limits = ctx.policy.throttle
        by_number, by_sender = ctx.failures  # counted over the policy's windows by `verify`
        if by_number >= limits.per_number or (
            ctx.claim.sender and by_sender >= limits.per_sender
        ):
            return Verdict(hit=True, outcome="throttled", reason=REASON, stop=True)
        return MISS

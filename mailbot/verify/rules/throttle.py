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
        store, sub = ctx.store, ctx.submission
        over_number = (
            store.key_failures_since("number", sub.guarantee_number, ctx.now - limits.number_window)
            >= limits.per_number
        )
        over_sender = bool(sub.sender) and (
            store.key_failures_since("sender", sub.sender or "", ctx.now - limits.sender_window)
            >= limits.per_sender
        )
        if over_number or over_sender:
            return Verdict(hit=True, outcome="throttled", reason=REASON, stop=True)
        return MISS

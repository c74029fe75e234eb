"""not_expired: the date of the claim is not after the guarantee's expiry (保証期限)."""

from __future__ import annotations

from ..rule import MISS, Context, Difference, Verdict


class NotExpired:
    name = "not_expired"
    description = "the guarantee has not expired (保証期限) on the date of the claim"

    def check(self, ctx: Context) -> Verdict:
        latest = ctx.matched_version or ctx.latest
        if latest is None or latest.expires_on is None or ctx.claim.on <= latest.expires_on:
            return MISS
        return Verdict(
            hit=True,
            outcome="expired",
            reason="この電子保証は保証期限を過ぎています。保証会社にご確認ください。",
            differences=(Difference("expires_on", latest.expires_on, ctx.claim.on),),
        )

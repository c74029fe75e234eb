"""not_cancelled: the guarantee's latest event is not a cancellation (取消)."""

from __future__ import annotations

from ..rule import MISS, Context, Verdict


class NotCancelled:
    name = "not_cancelled"
    description = "the guarantee has not been cancelled (取消)"

    def check(self, ctx: Context) -> Verdict:
        if ctx.latest is None or ctx.latest.event != "cancellation":
            return MISS
        return Verdict(
            hit=True,
            outcome="cancelled",
            reason="この電子保証は取り消されています。保証会社にご確認ください。",
            stop=True,
        )

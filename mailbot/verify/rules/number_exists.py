"""number_exists: the guarantee number is in the store."""

from __future__ import annotations

from ..rule import MISS, Context, Verdict


class NumberExists:
    name = "number_exists"
    description = "the guarantee number is registered in the guarantee store"

    def check(self, ctx: Context) -> Verdict:
        if ctx.versions:
            return MISS
        number = ctx.claim.guarantee_number
        return Verdict(
            hit=True,
            outcome="unknown_number",
            reason=f"保証契約番号 {number} の電子保証は登録されていません。番号をご確認ください。",
            stop=True,
        )

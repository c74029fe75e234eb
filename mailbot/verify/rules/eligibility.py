"""eligibility: the issuer accepts e-guarantees of this kind for this contract.

From the issuer's config: the kinds it accepts, and a first award date (the Kanagawa water
authority, for one, accepts e-guarantees only for contracts awarded on or after 令和8年7月1日).
"""

from __future__ import annotations

from ..rule import MISS, Context, Difference, Verdict


class Eligibility:
    name = "eligibility"
    description = "the issuer accepts e-guarantees of this kind and award date"

    def check(self, ctx: Context) -> Verdict:
        latest = ctx.matched_version or ctx.latest
        policy = ctx.policy
        if latest is None:
            return MISS
        if latest.kind is not None and latest.kind not in policy.accepted_kinds:
            return Verdict(
                hit=True,
                outcome="not_eligible",
                # Name the kind only if the sender did (docs/security.md).
                reason=(f"{ctx.claim.kind}の電子保証は、当方では受け付けていません。"
                        if ctx.claim.kind else
                        "この種類の電子保証は、当方では受け付けていません。"),
                differences=(Difference("kind", latest.kind, None),),
            )
        start = policy.awarded_on_or_after
        if start and latest.awarded_on is not None and latest.awarded_on < start:
            return Verdict(
                hit=True,
                outcome="not_eligible",
                reason=(
                    f"電子保証は{start:%Y年%-m月%-d日}以降に落札が決定した案件が対象で、"
                    "この契約は対象外です。"
                ),
                differences=(Difference("awarded_on", latest.awarded_on, None),),
            )
        return MISS

"""issuer_matches: the guarantee was issued to the issuer whose inbox received it.

The issuer's configured name and aliases (e.g. 「神奈川県内広域水道企業団 企業長」) are
compared with the store's issuer name after normalisation. Without an issuer (a clerk's
`mailbot verify` with no --issuer) the rule does not apply.
"""

from __future__ import annotations

from ..names import same_name
from ..rule import MISS, Context, Difference, Verdict


class IssuerMatches:
    name = "issuer_matches"
    description = "the guarantee's issuer (発注者) is the receiving issuer or one of its aliases"

    def check(self, ctx: Context) -> Verdict:
        latest = ctx.matched_version or ctx.latest
        names = ctx.policy.names
        if not names or latest is None or latest.issuer is None:
            return MISS
        if any(same_name(latest.issuer, n) for n in names):
            return MISS
        return Verdict(
            hit=True,
            outcome="issuer_mismatch",
            reason=(
                "この電子保証の発注者は当方ではありません。"
                "提出先（発注者）をご確認のうえ、正しい提出先にお送りください。"
            ),
            differences=(Difference("issuer", latest.issuer, ctx.policy.name),),
        )

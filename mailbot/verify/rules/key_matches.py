"""key_matches: the key is the latest version's (constant-time HMAC comparison).

A key that matches an earlier version only is `superseded` (the sender holds an old notice;
the chain goes on, since the sender did know a real key); one that matches no version is
`key_mismatch` and stops the chain, so nothing more about the guarantee is revealed.
"""

from __future__ import annotations

from mailbot.store.secret import same_hash

from ..rule import MISS, Context, Verdict


class KeyMatches:
    name = "key_matches"
    description = "the authentication key matches the latest version of the guarantee"

    def check(self, ctx: Context) -> Verdict:
        offered = ctx.offered_hash or ctx.store.hash_key(ctx.claim.auth_key)
        # Compare against every version, always, so timing does not tell which one matched.
        matches = [v for v in ctx.versions if same_hash(v.key_hash, offered)]
        latest = ctx.latest
        if latest is not None and any(v.version == latest.version for v in matches):
            ctx.matched_version = latest
            return MISS
        number = ctx.claim.guarantee_number
        if matches:
            ctx.matched_version = matches[-1]
            return Verdict(
                hit=True,
                outcome="superseded",
                reason=(
                    f"ご提出の認証キーは保証契約番号 {number} の変更前の電子保証のものです。"
                    "変更後の最新の「認証キーのお知らせ」をご提出ください。"
                ),
            )
        return Verdict(
            hit=True,
            outcome="key_mismatch",
            reason=(
                f"認証キーが保証契約番号 {number} の電子保証と一致しません。"
                "保証会社のネットデスクから「認証キーのお知らせ」を改めてダウンロードし、"
                "PDFのままご提出ください。"
            ),
            stop=True,
        )

"""Shared shape of the rules that compare one field the notice states with the store's.

A field the notice does not state is not compared (nothing to contradict). The reason names
the field and, at most, the value the sender gave — never the store's value (docs/security.md);
the store's value goes only into the audit trail's differences.
"""

from __future__ import annotations

from ..names import same_name
from ..rule import MISS, Context, Difference, Verdict


class FieldMatches:
    name = ""
    description = ""
    field = ""  # attribute on both Claim and Version
    outcome = ""
    label = ""  # Japanese field name for the reason

    def store_values(self, ctx: Context) -> tuple[object, ...]:
        latest = ctx.matched_version or ctx.latest
        return (getattr(latest, self.field),) if latest is not None else ()

    def check(self, ctx: Context) -> Verdict:
        stated = getattr(ctx.claim, self.field)
        if stated is None:
            return MISS
        known = [v for v in self.store_values(ctx) if v is not None]
        if not known or any(same_name(str(v), stated) for v in known):
            return MISS
        return Verdict(
            hit=True,
            outcome=self.outcome,
            reason=f"ご提出の{self.label}「{stated}」が登録されている電子保証の内容と一致しません。",
            differences=(Difference(self.field, known[0], stated),),
        )

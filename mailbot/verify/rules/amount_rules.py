"""amount_rules: the guaranteed amount respects the issuer's ratios to the contract amount.

前払金保証 ≤ advance_max, 中間前払金保証 ≤ intermediate_max with the advances of the same
contract together ≤ advances_total_max, 契約保証 ≥ contract_min (contract_min_low_bid for a
low bid). Amounts missing from the store mean there is nothing to check. The reason states
the rule, never the amounts (docs/security.md).
"""

from __future__ import annotations

from fractions import Fraction

from mailbot.store import Version

from ..rule import MISS, Context, Difference, Verdict, hit

ADVANCE_KINDS = ("前払金保証", "中間前払金保証")


def _tenths(ratio: Fraction) -> str:
    """4/10 → 「4割」; other ratios as a percentage."""
    tenths = ratio * 10
    return f"{tenths.numerator}割" if tenths.denominator == 1 else f"{float(ratio):.0%}"


class AmountRules:
    name = "amount_rules"
    description = "the guaranteed amount keeps the issuer's ratios to the contract amount"

    def check(self, ctx: Context) -> Verdict:
        latest = ctx.matched_version or ctx.latest
        if latest is None or not latest.contract_amount or latest.guaranteed_amount is None:
            return MISS
        problem = self._problem(ctx, latest)
        if problem is None:
            return MISS
        # The rule names the kind: state it only if the sender stated the kind.
        stated = f"保証金額が発注者の定める条件（{problem}）を満たしていません。"
        unstated = "保証金額が発注者の定める請負金額に対する割合の条件を満たしていません。"
        return hit("amount_rule", stated if ctx.claim.kind else unstated,
                   Difference("guaranteed_amount", latest.guaranteed_amount, problem))

    def _problem(self, ctx: Context, v: Version) -> str | None:
        rules = ctx.policy.amounts
        ratio = Fraction(v.guaranteed_amount or 0, v.contract_amount or 1)
        if v.kind == "前払金保証" and ratio > rules.advance_max:
            return f"前払金は請負金額の{_tenths(rules.advance_max)}以内"
        if v.kind == "中間前払金保証":
            if ratio > rules.intermediate_max:
                return f"中間前払金は請負金額の{_tenths(rules.intermediate_max)}以内"
            total = sum(
                (o.guaranteed_amount or 0)
                for o in ctx.store.latest_of_contract(v.contract_key, ctx.conn)
                if o.kind in ADVANCE_KINDS and o.event != "cancellation"
                and o.guarantee_number != v.guarantee_number
            ) + (v.guaranteed_amount or 0)
            if Fraction(total, v.contract_amount or 1) > rules.advances_total_max:
                return f"前払金と中間前払金の合計は請負金額の{_tenths(rules.advances_total_max)}以内"
        if v.kind == "契約保証":
            minimum = rules.contract_min_low_bid if v.low_bid else rules.contract_min
            if ratio < minimum:
                return f"契約保証は請負金額の{_tenths(minimum)}以上"
        return None

"""contractor_matches: the contractor on the notice is the store's contractor or its JV.

For a JV the notice names the representative company (「JVの場合は代表者」), while a surety's
export may carry the JV's name as well; either one matches.
"""

from __future__ import annotations

from ..rule import Context
from .compare import FieldMatches


class ContractorMatches(FieldMatches):
    name = "contractor_matches"
    description = "the contractor (受注者名) on the notice matches the store's contractor or JV"
    field = "contractor"
    outcome = "contractor_mismatch"
    label = "受注者名"

    def store_values(self, ctx: Context) -> tuple[object, ...]:
        latest = ctx.matched_version or ctx.latest
        return (latest.contractor, latest.jv_name) if latest is not None else ()

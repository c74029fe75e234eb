"""Verification: compare what a notice says with what the surety issued.

`verify(store, Claim, IssuerPolicy)` runs the issuer's ordered rule chain (one rule per
module in `rules/`) and returns a `VerifyResult` with outcome codes (docs/contracts.md), Japanese
reasons fit for a reply, the store's and the notice's values where they differ, and the trail
of rules that hit and missed. It knows the store, not where the mail came from.
"""

from .chain import VerifyResult, verify
from .outcomes import OUTCOMES, Outcome
from .policy import DEFAULT_CHAIN, AmountLimits, IssuerPolicy, ThrottleLimits
from .rule import Claim

__all__ = [
    "DEFAULT_CHAIN",
    "OUTCOMES",
    "AmountLimits",
    "Claim",
    "IssuerPolicy",
    "Outcome",
    "ThrottleLimits",
    "VerifyResult",
    "verify",
]

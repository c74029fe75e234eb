"""What one issuer accepts: its names, kinds, amount ratios, eligibility and throttle limits.

Plain data, built from the issuer's section of the config (`mailbot.config`) or from the
defaults below when a clerk verifies without a config. The ratios are the usual public-works
rules: advance ≤ 4/10 of the contract amount, intermediate advance ≤ 2/10 with all advances
≤ 6/10, contract guarantee ≥ 1/10 (3/10 for low bids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction

from parsers.model import KINDS

DEFAULT_CHAIN = (
    "number_exists",
    "key_matches",
    "throttle",  # for a failing claim only: the key is always checked first
    "not_cancelled",
    "issuer_matches",
    "kind_matches",
    "project_matches",
    "contractor_matches",
    "not_expired",
    "eligibility",
    "amount_rules",
)


@dataclass(frozen=True)
class AmountLimits:
    """The ratios of a guarantee's amount to the contract amount (checked by `amount_rules`)."""

    advance_max: Fraction = Fraction(4, 10)
    intermediate_max: Fraction = Fraction(2, 10)
    advances_total_max: Fraction = Fraction(6, 10)
    contract_min: Fraction = Fraction(1, 10)
    contract_min_low_bid: Fraction = Fraction(3, 10)


@dataclass(frozen=True)
class ThrottleLimits:
    """How many failed key checks per sender and per number, in which windows (checked by
    `throttle`)."""

    per_sender: int = 5
    sender_window: timedelta = timedelta(hours=1)
    per_number: int = 10
    number_window: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class IssuerPolicy:
    name: str | None = None  # None: no issuer given, the issuer rule does not apply
    aliases: tuple[str, ...] = ()
    accepted_kinds: tuple[str, ...] = KINDS
    awarded_on_or_after: date | None = None
    amounts: AmountLimits = field(default_factory=AmountLimits)
    throttle: ThrottleLimits = field(default_factory=ThrottleLimits)
    chain: tuple[str, ...] = DEFAULT_CHAIN
    staff: tuple[str, ...] = ()  # addresses told about what needs a human
    template_set: str = "default"
    departments: tuple[tuple[str, str], ...] = ()  # (kind, department) pairs
    # Replies: sender address and name, charset, signature block.
    reply_from: str | None = None
    reply_name: str | None = None
    charset: str = "utf-8"
    signature: str = ""

    def department_for(self, kind: str | None) -> str | None:
        return dict(self.departments).get(kind or "")

    @property
    def names(self) -> tuple[str, ...]:
        return ((self.name,) if self.name else ()) + self.aliases

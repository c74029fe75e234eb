"""The closed set of verification outcome codes (docs/contracts.md)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What verification says of one notice; a notice may have several (all but `verified`
    are discrepancies)."""

    VERIFIED = "verified"  # no rule hit
    UNKNOWN_NUMBER = "unknown_number"  # the number is not in the store
    KEY_MISMATCH = "key_mismatch"  # the key matches no version
    ISSUER_MISMATCH = "issuer_mismatch"  # issued to another issuer
    KIND_MISMATCH = "kind_mismatch"  # another 商品（保証区分）
    PROJECT_MISMATCH = "project_mismatch"  # another 工事名
    CONTRACTOR_MISMATCH = "contractor_mismatch"  # another contractor (nor its JV)
    CANCELLED = "cancelled"  # the latest event is a 取消
    SUPERSEDED = "superseded"  # the key matches an earlier version only
    EXPIRED = "expired"  # the submission date is after 保証期限
    AMOUNT_RULE = "amount_rule"  # the guaranteed amount breaks the issuer's ratios
    # the issuer does not accept this kind, or this contract's award date
    NOT_ELIGIBLE = "not_eligible"
    # a wrong number or key from a sender (or for a number) with too many failed key checks
    THROTTLED = "throttled"


OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in Outcome)

"""The closed set of verification outcome codes (docs/contracts.md)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What verification says of one notice; a notice may have several (all but `verified`
    are discrepancies)."""

    VERIFIED = "verified"
    UNKNOWN_NUMBER = "unknown_number"
    KEY_MISMATCH = "key_mismatch"
    ISSUER_MISMATCH = "issuer_mismatch"
    KIND_MISMATCH = "kind_mismatch"
    PROJECT_MISMATCH = "project_mismatch"
    CONTRACTOR_MISMATCH = "contractor_mismatch"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    AMOUNT_RULE = "amount_rule"
    NOT_ELIGIBLE = "not_eligible"
    THROTTLED = "throttled"


OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in Outcome)

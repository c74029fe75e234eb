"""What a verification rule sees and says (docs/contributing.md: a name, a description, `check()`).

A rule gets the `Context` (the claim, the guarantee's versions, the issuer's policy,
the store for the few rules that ask more) and returns a `Verdict`: whether it hit, the
outcome code and Japanese reason when it did, the differing values for the audit trail, and
whether the chain must stop (nothing more may be said once the key is wrong).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from sqlalchemy.engine import Connection

from mailbot.store import Store, Version

from .policy import IssuerPolicy


@dataclass(frozen=True)
class Claim:
    """What a notice (or a clerk) claims about a guarantee: number, key, kind, project,
    contractor, who sent it and when."""

    guarantee_number: str
    auth_key: str
    on: date
    kind: str | None = None
    project_name: str | None = None
    contractor: str | None = None
    # Who is throttled: the key of the proven sender ("domain:…" when authenticated, else
    # "addr:" the envelope sender or From), never a Reply-To (mailbot/pipeline/sender_key.py).
    sender: str | None = None
    at: datetime | None = None  # when the check happens (throttle windows); default now


@dataclass
class Context:
    claim: Claim
    policy: IssuerPolicy
    store: Store
    versions: list[Version]
    now: datetime
    conn: Connection | None = None  # one connection for all the chain's reads
    failures: tuple[int, int] = (0, 0)  # failed key checks: (for the number, from the sender)
    matched_version: Version | None = None  # set by key_matches
    offered_hash: str | None = None  # the claimed key's HMAC, computed once by `verify`

    @property
    def latest(self) -> Version | None:
        return self.versions[-1] if self.versions else None


@dataclass(frozen=True)
class Verdict:
    """What one rule says of a claim: hit or not, and when hit the outcome and why."""

    hit: bool
    outcome: str | None = None
    reason: str | None = None
    differences: tuple[Difference, ...] = field(default_factory=tuple)
    stop: bool = False


@dataclass(frozen=True)
class Difference:
    """A field where the store and the notice disagree, with both values."""

    field: str
    store: object
    notice: object


MISS = Verdict(hit=False)


def hit(outcome: str, reason: str, *differences: Difference, stop: bool = False) -> Verdict:
    """What a rule found: its outcome, the reason a person reads, the fields that differ."""
    return Verdict(hit=True, outcome=outcome, reason=reason, differences=differences, stop=stop)


class Rule(Protocol):
    name: str
    description: str

    def check(self, ctx: Context) -> Verdict: ...

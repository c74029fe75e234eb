"""The authentication verdict of one mail: DKIM, SPF, DMARC and ARC, and what it proves.

A mail's `From:` is whatever its sender typed. `AuthVerdict` records what was checked about
it — by the admin's own MTA (a trusted `Authentication-Results` header) or by mailbot itself
(`mailbot.auth.authenticate`) — and answers the three questions the pipeline asks:

- `authenticated(require)`: may this mail speak for its `From` domain under the
  counterpart's requirement (`dmarc`: an aligned DMARC pass; `dkim`: a passing signature
  aligned with the From domain; `none`: a counterpart that signs nothing)?
- `forged`: does it fail DMARC for a domain that publishes `p=quarantine` or `p=reject`
  (the domain's owner says such mail is not theirs)?
- `temporary`: could a check not be made for now (DNS did not answer: `temperror`), so the
  decision should wait and the mail be checked again? A temporary error is never a pass.

It is a frozen record, stored in the decision record as `to_json_obj()` and read back by
the views with `from_json_obj()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Result(StrEnum):
    """RFC 8601 result values mailbot distinguishes (others read as `none`)."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    POLICY = "policy"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class Requirement(StrEnum):
    """What counts as authenticated for one counterpart (`[auth] require`)."""

    DMARC = "dmarc"  # an aligned DMARC pass (the default)
    DKIM = "dkim"  # a passing DKIM signature whose domain aligns with From
    NONE = "none"  # the counterpart signs nothing: From is taken as it is (a warning)


@dataclass(frozen=True)
class DkimCheck:
    """One DKIM signature (or ARC seal's) result."""

    domain: str  # the signing domain, d=
    result: str  # a Result value
    selector: str | None = None  # s=
    aligned: bool = False  # d= shares the From domain's organizational domain


@dataclass(frozen=True)
class SpfCheck:
    """SPF for the envelope sender, when the connecting address was known."""

    domain: str | None  # the MAIL FROM domain (the HELO name for a null sender)
    result: str  # a Result value
    client_ip: str | None = None
    aligned: bool = False  # the domain shares the From domain's organizational domain


@dataclass(frozen=True)
class DmarcCheck:
    """DMARC for the From domain."""

    domain: str | None  # the From domain
    result: str  # pass | fail | none (no record) | temperror | permerror
    policy: str | None = None  # the published policy that applies: none | quarantine | reject
    aligned_by: str | None = None  # "dkim" or "spf": what made it pass


@dataclass(frozen=True)
class AuthVerdict:
    """What was proven about one mail's author (see the module docstring)."""

    source: str  # "authres:<authserv-id>" (the admin's MTA), "self" (mailbot), "unchecked"
    from_domain: str | None  # the domain of the From address, lower-case
    dkim: tuple[DkimCheck, ...] = ()
    spf: SpfCheck | None = None
    dmarc: DmarcCheck | None = None
    arc: str | None = None  # the ARC chain's result, where present
    envelope_from: str | None = None  # the envelope sender, when a trusted hop recorded it
    error: str | None = None  # why a check could not be made (DNS, for `temperror`)

    def signed_domain(self) -> str | None:
        """A domain a passing DKIM signature proves (an aligned one first), or None."""
        passing = [c for c in self.dkim if c.result == Result.PASS]
        passing.sort(key=lambda c: not c.aligned)
        return passing[0].domain if passing else None

    def authenticated(self, require: Requirement | str) -> bool:
        """May this mail speak for its From domain under `require`?"""
        if not self.from_domain:
            return False
        if require == Requirement.NONE:
            return True
        if self.dmarc is not None and self.dmarc.result == Result.PASS:
            return True
        if require == Requirement.DKIM:
            return any(c.result == Result.PASS and c.aligned for c in self.dkim)
        return False

    @property
    def forged(self) -> bool:
        """DMARC fails for a domain whose policy says such mail is not its own."""
        return (self.dmarc is not None and self.dmarc.result == Result.FAIL
                and self.dmarc.policy in ("quarantine", "reject"))

    @property
    def temporary(self) -> bool:
        """A check could not be made for now (no pass was reached because of it)."""
        if self.dmarc is not None and self.dmarc.result == Result.PASS:
            return False
        if self.dmarc is not None and self.dmarc.result == Result.TEMPERROR:
            return True
        return any(c.result == Result.TEMPERROR for c in self.dkim) and not any(
            c.result == Result.PASS for c in self.dkim)

    def summary(self) -> str:
        """One line for listings and logs: ``dmarc=pass (p=reject) dkim=pass:city.example.jp
        spf=none [authres:mx.city.example.jp]``."""
        parts = []
        if self.dmarc is not None:
            policy = f" (p={self.dmarc.policy})" if self.dmarc.policy else ""
            parts.append(f"dmarc={self.dmarc.result}{policy}")
        else:
            parts.append("dmarc=none")
        parts.append("dkim=" + (",".join(f"{c.result}:{c.domain}" for c in self.dkim) or "none"))
        parts.append(f"spf={self.spf.result}" if self.spf is not None else "spf=none")
        if self.arc:
            parts.append(f"arc={self.arc}")
        return " ".join(parts) + f" [{self.source}]"

    def label_ja(self, require: Requirement | str = Requirement.DMARC) -> str:
        """What a clerk reads in the digest and the console."""
        if self.forged:
            return "なりすましの疑い（DMARC 不合格）"
        if self.temporary:
            return "認証を確認できませんでした（DNS 一時エラー）"
        if self.authenticated(require) and require != Requirement.NONE:
            return "送信元認証済み"
        if require == Requirement.NONE:
            return "送信元認証なし（設定により確認しない）"
        return "送信元未認証"

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "from_domain": self.from_domain,
            "dkim": [c.__dict__ for c in self.dkim],
            "spf": None if self.spf is None else self.spf.__dict__,
            "dmarc": None if self.dmarc is None else self.dmarc.__dict__,
            "arc": self.arc,
            "envelope_from": self.envelope_from,
            "error": self.error,
            "summary": self.summary(),
        }

    @classmethod
    def from_json_obj(cls, data: dict[str, Any]) -> AuthVerdict:
        return cls(
            source=data.get("source") or "unchecked",
            from_domain=data.get("from_domain"),
            dkim=tuple(DkimCheck(**c) for c in data.get("dkim") or ()),
            spf=SpfCheck(**data["spf"]) if data.get("spf") else None,
            dmarc=DmarcCheck(**data["dmarc"]) if data.get("dmarc") else None,
            arc=data.get("arc"),
            envelope_from=data.get("envelope_from"),
            error=data.get("error"),
        )


UNCHECKED = AuthVerdict(source="unchecked", from_domain=None)

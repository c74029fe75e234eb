"""The authentication step of the daemon's pipeline: the verdict on a mail's author, and
whether its decision waits for DNS.

`AuthStep.check()` runs the `Authenticator` on the raw mail (timed, for the metrics) and
returns the facts with their `auth` verdict. A verdict that is `temporary` (a DNS
`temperror`: the sender's domain could not be asked) is not the mail's fault and never a
pass: while the row has been deferred fewer than `[auth] retries` times, `wait()` says how
long it waits (`[auth] retry_seconds`) and the daemon puts it back in the ledger
(`Ledger.defer`). After the last retry the mail is decided with its temporary verdict — the
sides treat it as unauthenticated — and `note()` writes into the decision record that it
waited and what it still proved (`auth_deferred`).

Plain functions of plain data: the daemon owns the ledger and the metrics they feed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mailbot.auth import Authenticator, AuthSettings, AuthVerdict, Requirement

from .facts import MailFacts
from .records import DecisionRecord


@dataclass(frozen=True)
class Checked:
    """The facts with their verdict, and how long the checks took."""

    facts: MailFacts
    seconds: float

    @property
    def verdict(self) -> AuthVerdict:
        assert self.facts.auth is not None
        return self.facts.auth


class AuthStep:
    """One authenticator for the pipeline's lifetime (its resolver configuration)."""

    def __init__(self, settings: AuthSettings, authenticator: Authenticator | None = None
                 ) -> None:
        self.settings = settings
        self.authenticator = authenticator or Authenticator(settings)

    def check(self, raw: bytes, facts: MailFacts, intake: str) -> Checked:
        """`facts` with the verdict on `raw`; `intake` is the mailbox's kind."""
        started = time.monotonic()
        verdict = self.authenticator.verdict(raw, intake=intake)
        return Checked(replace(facts, auth=verdict), time.monotonic() - started)

    def wait(self, verdict: AuthVerdict, deferrals: int, now: datetime) -> datetime | None:
        """Until when the decision waits for another try, or None: decide now."""
        if not verdict.temporary or deferrals >= self.settings.retries:
            return None
        return now + timedelta(seconds=self.settings.retry_seconds)


def deferral_reason(verdict: AuthVerdict) -> str:
    """The row's last error while it waits: what could not be checked."""
    why = f": {verdict.error}" if verdict.error else ""
    return f"authentication deferred (DNS temperror){why}; {verdict.summary()}"


def note(record: DecisionRecord, verdict: AuthVerdict | None, deferrals: int) -> None:
    """Say in `record` that its decision waited `deferrals` times for DNS, and whether the
    verdict it was decided with is still temporary (then it is not a pass)."""
    if verdict is None or not deferrals:
        return
    record["auth_deferred"] = {"deferrals": deferrals, "temporary": verdict.temporary,
                               "summary": verdict.summary()}


def verdict_result(verdict: AuthVerdict) -> str:
    """The verdict in one word, for `mailbot_auth_verdicts_total{result}`: temperror, forged,
    pass (aligned DMARC pass), dkim (an aligned DKIM pass without DMARC), fail (DMARC
    fails), none (nothing proven) or unchecked."""
    if verdict.source == "unchecked":
        return "unchecked"
    if verdict.temporary:
        return "temperror"
    if verdict.forged:
        return "forged"
    if verdict.authenticated(Requirement.DMARC):
        return "pass"
    if verdict.authenticated(Requirement.DKIM):
        return "dkim"
    if verdict.dmarc is not None and verdict.dmarc.result == "fail":
        return "fail"
    return "none"


VERDICT_RESULTS = ("pass", "dkim", "none", "fail", "forged", "temperror", "unchecked")

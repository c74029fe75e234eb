"""Sender authentication: what a mail proves about its author (DKIM, SPF, DMARC, ARC).

`Authenticator(settings).verdict(raw, intake=...)` returns an `AuthVerdict`
(`mailbot/auth/verdict.py`): from the admin's own MTA's `Authentication-Results` when it
carries a trusted authserv-id above the trust boundary (`results.py`), else by verifying
the mail itself — DKIM (`dkim.py`), ARC (`arc.py`), SPF when mailbot's own listener saw the
client (`spf.py`, `trace.py`), DMARC (`dmarc.py`), DNS through one resolver (`dns.py`).
`intake` is the mailbox's kind (`imap`, `smtp`, `lmtp`). Nothing a sender writes makes it
raise. See docs/authentication.md. This package imports no other part of mailbot.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from .arc import check_arc
from .dkim import check_dkim
from .dmarc import evaluate, policy_of
from .dns import Lookup, TempError
from .results import from_results, trusted_headers
from .settings import AuthSettings
from .spf import check_spf
from .trace import read_trace, trace_header
from .verdict import (
    UNCHECKED,
    AuthVerdict,
    DkimCheck,
    DmarcCheck,
    Requirement,
    Result,
    SpfCheck,
)

log = logging.getLogger(__name__)
MAX_HEADER_FIELDS = 1000  # fields read from the top; a mail with more is judged on these


def _headers(raw: bytes) -> list[tuple[str, str]]:
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0),
              default=len(raw))
    message: Message = BytesHeaderParser(policy=compat32).parsebytes(raw[:end + 2])
    return [(str(name), str(value)) for name, value in message.items()[:MAX_HEADER_FIELDS]]


def _addresses(fields: list[str]) -> list[tuple[str, str]]:
    """`getaddresses(fields)`, or none where the stdlib's parser gives up: it recurses once
    per nested comment, so a sender's ``((((…))))`` raises RecursionError."""
    try:
        return getaddresses(fields)
    except Exception:  # noqa: BLE001 — an unreadable From has no address
        return []


def from_domain(headers: list[tuple[str, str]]) -> str | None:
    """The domain of the one From address, lower-case (IDNA); None for no From, several
    From fields or addresses, or one that cannot be read."""
    fields = [value for name, value in headers if name.lower() == "from"]
    if len(fields) != 1:
        return None
    addresses = [a for _name, a in _addresses(fields) if a]
    if len(addresses) != 1 or addresses[0].count("@") != 1:
        return None
    domain = addresses[0].rpartition("@")[2].strip().rstrip(".").lower()
    if not domain or any(c in domain for c in " \t<>()[],;:\\\"") or "." not in domain:
        return None
    try:
        domain = domain.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    return domain if len(domain) <= 253 else None


MAX_FROM_DOMAINS = 5


def _several_from(verdict: AuthVerdict, headers: list[tuple[str, str]], lookup: Lookup
                  ) -> AuthVerdict:
    """A mail with several From fields or addresses can pass no DMARC check; when one of
    its domains publishes `p=quarantine` or `p=reject`, it fails DMARC under that policy
    (forged): a second From must not hide the first's policy."""
    fields = [value for name, value in headers if name.lower() == "from"]
    domains = []
    for _name, address in _addresses(fields):
        found = from_domain([("From", address)]) if "@" in address else None
        if found and found not in domains:
            domains.append(found)
    for domain in domains[:MAX_FROM_DOMAINS]:
        try:
            _record, policy = policy_of(lookup, domain)
        except TempError:
            continue
        if policy in ("quarantine", "reject"):
            return replace(verdict, dmarc=DmarcCheck(domain, Result.FAIL, policy))
    return verdict


class Authenticator:
    """Computes verdicts with one resolver configuration (see the module docstring)."""

    def __init__(self, settings: AuthSettings | None = None) -> None:
        self.settings = settings or AuthSettings()

    def verdict(self, raw: bytes, *, intake: str = "imap") -> AuthVerdict:
        """The verdict for `raw`. Never raises for anything a sender wrote."""
        domain: str | None = None
        try:
            headers = _headers(raw)
            domain = from_domain(headers)
            lookup = Lookup(self.settings)
            # Behind mailbot's own SMTP listener the client is the sender itself, and the
            # listener writes no Received line: every A-R there is the sender's.
            found = (trusted_headers(headers, self.settings.authserv_ids)
                     if intake != "smtp" else [])
            if found:
                verdict = from_results(found, domain, lookup, headers)
            else:
                verdict = self._self_verify(raw, headers, domain, intake, lookup)
            return verdict if domain else _several_from(verdict, headers, lookup)
        except Exception as exc:  # noqa: BLE001 — a fault here must not stop the mail
            log.exception("authentication failed on a mail (judged unauthenticated)")
            return AuthVerdict(source="self", from_domain=domain,
                               dmarc=DmarcCheck(domain, Result.PERMERROR),
                               error=f"internal: {type(exc).__name__}")

    def _self_verify(self, raw: bytes, headers: list[tuple[str, str]], domain: str | None,
                     intake: str, lookup: Lookup) -> AuthVerdict:
        names = [name.lower() for name, _value in headers]
        dkim = check_dkim(raw, lookup, domain) if "dkim-signature" in names else ()
        arc = check_arc(raw, names, lookup)
        trace = read_trace(headers, intake)
        spf = None
        if trace is not None and trace.protocol == "SMTP" and intake == "smtp":
            spf = check_spf(lookup, trace.ip, trace.mail_from, trace.helo, domain,
                            self.settings.timeout_seconds)
        dmarc = evaluate(lookup, domain, dkim, spf)
        return AuthVerdict(source="self", from_domain=domain, dkim=dkim, spf=spf, dmarc=dmarc,
                           arc=arc, envelope_from=trace.mail_from if trace else None,
                           error="; ".join(lookup.temp_errors[:3]) or None)


__all__ = ["UNCHECKED", "AuthSettings", "AuthVerdict", "Authenticator", "DkimCheck",
           "DmarcCheck", "Requirement", "Result", "SpfCheck", "trace_header"]

"""Who a mail is from, for the issuer-side throttle: the proven sender, never `Reply-To`.

A failed key check is counted against the key `throttle_key` gives (docs/security.md):

1. ``domain:<From domain>`` when the mail is authenticated under the issuer's requirement
   (`Config.auth_requirement(issuer, "issuer")`, `dmarc` or `dkim`): its owner signed it;
2. else ``domain:<d=>`` of a passing DKIM signature (`AuthVerdict.signed_domain()`), aligned
   or not: whoever sent it controls that domain's keys, and cannot rotate it per mail;
3. else ``addr:<envelope sender>`` (what a trusted hop recorded, else `Return-Path`);
4. else ``addr:<From>``.

`Reply-To` (`MailFacts.sender`, where replies go) is chosen freely per mail, so guesses from
twenty Reply-To addresses through one envelope sender count as one sender. The domain is
the one proven, not its organizational domain: two contractors under one registrable domain
(`maru.example.jp`, `kaku.example.jp`) are two senders. Requirement `none` proves nothing,
so the From domain is not used under it.
"""

from __future__ import annotations

from email.utils import parseaddr

from mailbot.auth import AuthVerdict, Requirement

from .facts import MailFacts

MAX_KEY = 320  # what the key_failures column holds


def throttle_key(facts: MailFacts, require: Requirement | str) -> str | None:
    """The throttle key of a mail's sender (see the module docstring), or None."""
    auth: AuthVerdict | None = facts.auth
    if auth is not None:
        if (require != Requirement.NONE and auth.from_domain
                and auth.authenticated(require)):
            return _clip("domain:" + auth.from_domain.lower())
        signed = auth.signed_domain()
        if signed:
            return _clip("domain:" + signed.lower())
    envelope = (auth.envelope_from if auth is not None else None) or _bare(facts.return_path)
    if envelope:
        return _clip("addr:" + envelope.lower())
    if facts.author:
        return _clip("addr:" + facts.author)
    return None


def _bare(path: str | None) -> str | None:
    """The address of a `Return-Path` (None for the null sender `<>` or no address)."""
    if not path:
        return None
    address = parseaddr(path)[1].strip()
    return address if "@" in address else None


def _clip(key: str) -> str:
    return key[:MAX_KEY]

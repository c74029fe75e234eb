"""DMARC (RFC 7489): the From domain's policy, and whether DKIM or SPF passed aligned with it.

The policy record is `_dmarc.<From domain>`; when there is none, that of the organizational
domain (the From domain's registrable domain, from the Public Suffix List shipped in
`publicsuffixlist` — never fetched at run time), whose `sp=` then applies (else its `p=`).
More than one DMARC record, or a record without a valid `p=`, is no record (§6.6.3).

Alignment is relaxed (the organizational domains are the same) unless the record says
`adkim=s` / `aspf=s` (the domains are the same). DMARC passes on an aligned DKIM pass or an
aligned SPF pass; with neither, a `temperror` among the checks (or in the policy lookup)
makes DMARC `temperror` — a DNS failure never turns into a `fail` a domain's `p=reject`
would call forged — and otherwise it fails.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache

from publicsuffixlist import PublicSuffixList

from .dns import Lookup, TempError
from .verdict import DkimCheck, DmarcCheck, Result, SpfCheck

POLICIES = ("none", "quarantine", "reject")


@cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def organizational(domain: str) -> str:
    """The registrable domain of `domain` (itself when it is a public suffix or unknown)."""
    domain = domain.rstrip(".").lower()
    try:
        return _psl().privatesuffix(domain) or domain
    except Exception:  # noqa: BLE001 — a sender's garbage has no organizational domain
        return domain


def aligned(domain: str | None, from_domain: str | None, strict: bool = False) -> bool:
    """Does `domain` (d=, MAIL FROM) align with the From domain?"""
    if not domain or not from_domain:
        return False
    a, b = domain.rstrip(".").lower(), from_domain.rstrip(".").lower()
    if strict:
        return a == b
    return organizational(a) == organizational(b)


_VERSION = re.compile(r"[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")
_VERSION_BYTES = re.compile(rb"[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")


def parse_record(text: bytes) -> dict[str, str] | None:
    """The tags of a DMARC record, or None when it is not one (v=DMARC1 first, valid p=)."""
    try:
        value = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    tags: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, tag_value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), tag_value.strip())
    # RFC 7489 §6.4: the tag name "v" is case-insensitive, its value "DMARC1" is not, and
    # white space may stand around "=" (`dmarc-version = "v" *WSP "=" *WSP "DMARC1"`).
    if not _VERSION.match(value) or tags.get("v") != "DMARC1":
        return None
    if tags.get("p", "").lower() not in POLICIES:
        return None
    return tags


def _record(lookup: Lookup, domain: str) -> dict[str, str] | None:
    found = [t for t in lookup.txt(f"_dmarc.{domain}") if _VERSION_BYTES.match(t)]
    return parse_record(found[0]) if len(found) == 1 else None


def policy_of(lookup: Lookup, from_domain: str) -> tuple[dict[str, str] | None, str | None]:
    """The record that applies to `from_domain` and its policy (p=, or sp= for a
    subdomain found through its organizational domain). Raises TempError."""
    record = _record(lookup, from_domain)
    if record is not None:
        return record, record["p"].lower()
    org = organizational(from_domain)
    if org == from_domain:
        return None, None
    record = _record(lookup, org)
    if record is None:
        return None, None
    sub = record.get("sp", "").lower()
    return record, sub if sub in POLICIES else record["p"].lower()


def evaluate(lookup: Lookup, from_domain: str | None, dkim: tuple[DkimCheck, ...],
             spf: SpfCheck | None) -> DmarcCheck | None:
    """DMARC for `from_domain` given the DKIM and SPF results (None without a From domain)."""
    if not from_domain:
        return None
    try:
        record, policy = policy_of(lookup, from_domain)
    except TempError:
        return DmarcCheck(from_domain, Result.TEMPERROR)
    if record is None:
        return DmarcCheck(from_domain, Result.NONE)
    strict_dkim = record.get("adkim", "r").lower() == "s"
    strict_spf = record.get("aspf", "r").lower() == "s"
    dkim_aligned = [c for c in dkim if aligned(c.domain, from_domain, strict_dkim)]
    spf_aligned = spf is not None and aligned(spf.domain, from_domain, strict_spf)
    if any(c.result == Result.PASS for c in dkim_aligned):
        return DmarcCheck(from_domain, Result.PASS, policy, "dkim")
    if spf is not None and spf_aligned and spf.result == Result.PASS:
        return DmarcCheck(from_domain, Result.PASS, policy, "spf")
    pending = [c.result for c in dkim] + ([spf.result] if spf is not None else [])
    if Result.TEMPERROR in pending:
        return DmarcCheck(from_domain, Result.TEMPERROR, policy)
    return DmarcCheck(from_domain, Result.FAIL, policy)


def with_policy(lookup: Lookup, check: DmarcCheck) -> DmarcCheck:
    """`check` (from an Authentication-Results header) with the policy looked up when the
    header did not name it; a lookup that fails leaves it unknown."""
    if check.policy is not None or not check.domain:
        return check
    try:
        _record_found, policy = policy_of(lookup, check.domain)
    except TempError:
        return check
    return replace(check, policy=policy)

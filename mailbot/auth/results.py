"""Trusted Authentication-Results (RFC 8601): what the admin's own MTA found, parsed with
`authres`.

Which headers are believed: those whose authserv-id is one of `[auth] authserv_ids`, and
only above the trust boundary. Read top-down, the boundary is the first `Received` field
that is not a local delivery hop (`with LMTP`, e.g. Dovecot's between the MTA and the
mailbox): the admin's MTA writes its Authentication-Results above its own Received line,
and everything below that line came from outside — an A-R with our id there was written
by a sender and is ignored (RFC 8601 §5; the MTA should also strip such headers).

The results map into the verdict: `dkim` (header.d, header.s), `spf` (smtp.mailfrom, or
smtp.helo), `dmarc` (header.from, and the policy from `policy.dmarc` or the comment's `p=`
/ `policy=` as OpenDMARC and rspamd write it), `arc`. When the MTA's headers give no DMARC
result for the From domain, mailbot evaluates DMARC itself from the MTA's DKIM and SPF
results; when a DMARC `fail` does not name the policy, the policy is looked up in DNS
(`forged` needs it).
"""

from __future__ import annotations

import re
from typing import Any

import authres

from .dkim import covers
from .dmarc import aligned, evaluate, with_policy
from .dns import Lookup
from .verdict import AuthVerdict, DkimCheck, DmarcCheck, Result, SpfCheck

MAX_HEADERS = 20  # trusted A-R headers read; an MTA writes one or a few
MAX_VALUE = 8192  # characters of one A-R value parsed
MAX_DKIM = 10
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"?')
_INNER_COMMENT = re.compile(r"\([^()]*\)")
_BY = re.compile(r"\bby\s", re.IGNORECASE)
_WITH = re.compile(r"\bwith\s+(\S+)", re.IGNORECASE)
_LOCAL = ("lmtp", "lmtps", "lmtpa", "lmtpsa")
_COMMENT = re.compile(r"\bdmarc\s*=\s*[a-z]+\s*\(([^()]*)\)", re.IGNORECASE)
_POLICY = re.compile(r"\b(?:p|policy)\s*=\s*(none|quarantine|reject)\b", re.IGNORECASE)
_AUTHSERV = re.compile(r"^\s*(?:\([^()]*\)\s*)*([^\s;()]+)")
_KNOWN = {r.value for r in Result}


def local_hop(received: str) -> bool:
    """Is this Received field a local `with LMTP` delivery hop? Only its own `with` clause
    counts: the one after its last `by`, with quoted strings (a sender's quoted local part
    in `for <…>` or `envelope-from <…>`), comments and the date taken out first."""
    text = _QUOTED.sub(" ", received.rpartition(";")[0] if ";" in received else received)
    for _ in range(20):
        text, found = _INNER_COMMENT.subn(" ", text)
        if not found:
            break
    if "(" in text or ")" in text:
        return False  # unbalanced: not the line of any MTA
    after_by = list(_BY.finditer(text))
    if not after_by:
        return False
    clause = _WITH.search(text, after_by[-1].end())
    return clause is not None and clause.group(1).lower() in _LOCAL


def trusted_headers(headers: list[tuple[str, str]], ids: tuple[str, ...]
                    ) -> list[tuple[str, Any]]:
    """(authserv-id, parsed header) of each trusted A-R above the boundary, top-down."""
    wanted = {i.lower() for i in ids}
    found: list[tuple[str, Any]] = []
    if not wanted:
        return found
    for name, value in headers:
        lower = name.lower()
        if lower == "received":
            if local_hop(value):
                continue
            break
        if lower != "authentication-results" or len(found) >= MAX_HEADERS:
            continue
        head = _AUTHSERV.match(value)
        if head is None or head.group(1).lower() not in wanted:
            continue
        try:
            parsed = authres.all_features().parse_value(" ".join(value.split())[:MAX_VALUE])
        except Exception:  # noqa: BLE001 — a garbled header from our MTA says nothing
            continue
        parsed_id = str(parsed.authserv_id or "").lower()
        if parsed_id in wanted:
            found.append((parsed_id, (parsed, value)))
    return found


def _result(value: Any) -> str:
    text = str(value or "").lower()
    if text == "hardfail":
        return Result.FAIL
    return text if text in _KNOWN else Result.NONE


def _prop(result: Any, kind: str, name: str) -> str | None:
    for p in getattr(result, "properties", None) or ():
        if p.type == kind and p.name == name and p.value:
            return str(p.value).strip().lower()[:253]
    return None


def _domain(value: str | None) -> str | None:
    if not value:
        return None
    return value.rpartition("@")[2].strip("<>").lower() or None


def _covered(headers: list[tuple[str, str]], domain: str | None, selector: str | None
             ) -> bool:
    """Does a DKIM-Signature of `domain` (and `selector`, when named) in the mail sign every
    field mailbot decides on and the whole body (`dkim.covers`)? The MTA verified it; what
    it signed is read from the signature itself; when the signature is no longer in the
    mail, the MTA's word is taken."""
    names = [name.encode("ascii", "replace") for name, _value in headers]
    seen = False
    for name, value in headers:
        if name.lower() != "dkim-signature":
            continue
        tags = dict(part.strip().partition("=")[::2] for part in
                    "".join(value.split()).split(";") if "=" in part)
        if (tags.get("d", "").lower() == (domain or "")
                and (selector is None or tags.get("s", "").lower() == selector)):
            seen = True
            if covers(names, value.encode("ascii", "replace")):
                return True
    return not seen  # an MTA that removed the signatures it verified: its word is all


def from_results(found: list[tuple[str, Any]], from_domain: str | None, lookup: Lookup,
                 headers: list[tuple[str, str]] | None = None) -> AuthVerdict:
    """The verdict the trusted headers `found` give (see the module docstring). A DKIM
    pass whose signature in `headers` leaves a field mailbot decides on unsigned (or the
    body's tail: `dkim.covers`) is `policy`, and a DMARC pass that rested on it alone fails."""
    dkim: list[DkimCheck] = []
    spf: SpfCheck | None = None
    dmarc: DmarcCheck | None = None
    arc: str | None = None
    envelope: str | None = None
    for _id, (header, raw) in found:
        for result in header.results:
            method = str(result.method).lower()
            if method == "dkim" and len(dkim) < MAX_DKIM:
                domain = _prop(result, "header", "d") or _domain(_prop(result, "header", "i"))
                selector = _prop(result, "header", "s")
                value = _result(result.result)
                if value == Result.PASS and not _covered(headers or [], domain, selector):
                    value = Result.POLICY
                dkim.append(DkimCheck(domain or "", value, selector,
                                      aligned(domain, from_domain)))
            elif method == "spf" and spf is None:
                mail_from = _prop(result, "smtp", "mailfrom")
                domain = _domain(mail_from) or _prop(result, "smtp", "helo")
                envelope = mail_from
                spf = SpfCheck(domain, _result(result.result), None,
                               aligned(domain, from_domain))
            elif method == "dmarc" and dmarc is None:
                domain = _prop(result, "header", "from")
                if from_domain is None or (domain and domain != from_domain):
                    continue  # about another From: not this mail's DMARC
                policy = _prop(result, "policy", "dmarc")
                if policy not in ("none", "quarantine", "reject"):
                    comment = _COMMENT.search(raw)
                    found_policy = _POLICY.search(comment.group(1)) if comment else None
                    policy = found_policy.group(1).lower() if found_policy else None
                dmarc = DmarcCheck(from_domain, _result(result.result), policy)
            elif method == "arc" and arc is None:
                arc = _result(result.result)
    if dmarc is None:
        dmarc = evaluate(lookup, from_domain, tuple(dkim), spf)
    elif dmarc.result == Result.FAIL:
        dmarc = with_policy(lookup, dmarc)
    elif dmarc.result == Result.PASS:
        passing = [c for c in dkim if c.result == Result.PASS and c.aligned]
        by_spf = spf is not None and spf.aligned and spf.result == Result.PASS
        by = "dkim" if passing else "spf" if by_spf else None
        if by is None and any(c.result == Result.POLICY and c.aligned for c in dkim):
            dmarc = with_policy(lookup, DmarcCheck(dmarc.domain, Result.FAIL, dmarc.policy))
        else:
            dmarc = DmarcCheck(dmarc.domain, dmarc.result, dmarc.policy, by)
    source = "authres:" + found[0][0]
    return AuthVerdict(source, from_domain, tuple(dkim), spf, dmarc, arc, envelope,
                       "; ".join(lookup.temp_errors[:3]) or None)

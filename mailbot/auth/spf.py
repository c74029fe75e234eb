"""SPF (RFC 7208) with pyspf, its DNS through our `Lookup`.

Only when mailbot's own SMTP listener saw the connecting address (its trace header, see
`mailbot/auth/trace.py`): the identity checked is the MAIL FROM domain, or the HELO name for
the null sender. pyspf looks names up through its module function `spf.DNSLookup`; this
module replaces it once with a dispatcher that sends a lookup made inside `check_spf` to
that call's `Lookup` (a context variable, so threads and other users of pyspf are not
affected) and any other to pyspf's own.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import spf

from .dmarc import aligned
from .dns import Lookup, TempError
from .verdict import Result, SpfCheck

QUERY_SECONDS = 20  # RFC 7208 §4.6.4: the whole evaluation's time limit

_current: contextvars.ContextVar[Lookup | None] = contextvars.ContextVar(
    "mailbot_spf_lookup", default=None)
_original: Callable[..., list[Any]] = spf.DNSLookup


def _dns_lookup(name: str, qtype: str, strict: Any = True, timeout: float = 20) -> list[Any]:
    lookup = _current.get()
    if lookup is None:
        return _original(name, qtype, strict, timeout)
    try:
        rdata = lookup.query(name, qtype)
    except TempError as exc:
        raise spf.TempError(str(exc)) from None
    out: list[Any] = []
    for r in rdata:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), r.address))
        elif qtype == "MX":
            out.append(((name, qtype), (r.preference, r.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), r.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), r.strings))
    return out


spf.DNSLookup = _dns_lookup

RESULTS = {"pass": Result.PASS, "fail": Result.FAIL, "softfail": Result.SOFTFAIL,
           "neutral": Result.NEUTRAL, "none": Result.NONE, "temperror": Result.TEMPERROR,
           "permerror": Result.PERMERROR}


def check_spf(lookup: Lookup, client_ip: str, mail_from: str, helo: str,
              from_domain: str | None, timeout: float) -> SpfCheck:
    """SPF for the envelope sender (or the HELO name for the null sender)."""
    domain = mail_from.rpartition("@")[2].lower() if mail_from else helo.lower()
    sender = mail_from or f"postmaster@{helo}"
    token = _current.set(lookup)
    try:
        query = spf.query(client_ip, sender, helo, timeout=timeout, querytime=QUERY_SECONDS)
        result, _code, _explanation = query.check()
        value = RESULTS.get(str(result).lower(), Result.PERMERROR)
    except Exception:  # noqa: BLE001 — the library's fault on hostile input
        value = Result.PERMERROR
    finally:
        _current.reset(token)
    return SpfCheck(domain or None, value, client_ip, aligned(domain, from_domain))

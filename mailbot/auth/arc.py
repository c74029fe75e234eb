"""ARC (RFC 8617): the chain of a forwarder's seals, verified with dkimpy where present.

The result (`pass`, `fail`, `none`, `temperror`) is recorded in the verdict for a person to
read; nothing is authenticated by ARC alone (a seal proves who forwarded, not who wrote).
"""

from __future__ import annotations

import dkim

from .dkim import _quiet, dnsfunc
from .dns import Lookup
from .verdict import Result

MAX_ARC_HEADERS = 3 * 10  # ten ARC sets; a longer chain is not verified


def check_arc(raw: bytes, header_names: list[str], lookup: Lookup) -> str | None:
    """The ARC chain's result, or None when the mail has no ARC-Seal."""
    count = sum(1 for n in header_names
                if n in ("arc-seal", "arc-message-signature", "arc-authentication-results"))
    if not any(n == "arc-seal" for n in header_names):
        return None
    if count > MAX_ARC_HEADERS:
        return str(Result.FAIL)
    before = lookup.temp_hits
    try:
        cv, _results, _reason = dkim.arc_verify(raw, logger=_quiet, dnsfunc=dnsfunc(lookup))
    except Exception:  # noqa: BLE001 — the library's fault on hostile input
        return str(Result.FAIL)
    if cv == dkim.CV_Pass:
        return str(Result.PASS)
    if lookup.temp_hits > before:
        return str(Result.TEMPERROR)
    if cv == dkim.CV_None:
        return str(Result.NONE)
    return str(Result.FAIL)

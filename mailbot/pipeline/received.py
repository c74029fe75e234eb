"""The Received hops of a mail (RFC 5321 §4.4 trace fields), for sender authentication.

Each relay on the way prepends a Received field; read bottom-up they are the mail's path,
and the hop our own server added names the host that handed the mail in — what SPF and the
trust boundary for Authentication-Results are judged on. The fields are split into their
clauses by `mail-parser` (`mailparser.utils.receiveds_parsing`: a linear scanner made for
adversarial input), on the header values only; mailbot's reader does the rest of the mail.

Whatever a sender wrote, this never raises: a field it cannot split is a hop with no
clauses, a field longer than `MAX_FIELD` is not split at all, only the last `MAX_HOPS`
fields (the ones nearest to us) are read, and each clause is clipped. mail-parser logs the
header text it parses at DEBUG; mailbot logs no mail content, so its logger is muted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import Message
from typing import Any

from mailparser.utils import receiveds_parsing

logging.getLogger("mailparser").setLevel(logging.CRITICAL)

MAX_HOPS = 30  # RFC 5321 §6.3 treats 100 hops as a loop; no honest mail has 30
MAX_FIELD = 4096  # characters of one Received field that are split into clauses
MAX_CLAUSE = 255  # characters kept of each clause


@dataclass(frozen=True)
class Hop:
    """One Received field; `hop` 1 is the earliest (the one farthest from us)."""

    hop: int
    from_clause: str | None = None  # the sending host as it named itself, and as seen
    by_clause: str | None = None  # the receiving host
    protocol: str | None = None  # the `with` clause: SMTP, ESMTPS, LMTP …
    date_utc: str | None = None  # ISO 8601, when the field's date could be read


def _clip(value: Any) -> str | None:
    return value[:MAX_CLAUSE] if isinstance(value, str) and value else None


def received_hops(message: Message) -> tuple[Hop, ...]:
    """The mail's Received hops, earliest first (see the module docstring)."""
    try:
        fields = [str(v) for v in message.get_all("Received", [])][:MAX_HOPS]
    except Exception:  # noqa: BLE001 — a header that cannot be read has no hops to give
        return ()
    if not fields:
        return ()
    readable = [f if len(f) <= MAX_FIELD else "" for f in fields]
    try:
        parsed = receiveds_parsing(readable)
    except Exception:  # noqa: BLE001 — a library fault on hostile input: hops unknown
        return tuple(Hop(hop=n) for n in range(1, len(fields) + 1))
    return tuple(
        Hop(hop=n, from_clause=_clip(p.get("from")), by_clause=_clip(p.get("by")),
            protocol=_clip(p.get("with")), date_utc=_clip(p.get("date_utc")))
        for n, p in enumerate(parsed, 1)
    )

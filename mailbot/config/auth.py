"""`[auth]`: how mail authors are authenticated (docs/authentication.md), and the
per-counterpart requirement overrides.

```toml
[auth]
require = "dmarc"                      # dmarc | dkim | none: what counts as authenticated
authserv_ids = ["mx.maru.example.jp"]  # Authentication-Results of our own MTA to believe
resolvers = ["127.0.0.1:53"]           # DNS for self-verification; default /etc/resolv.conf
timeout_seconds = 5                    # per DNS query; no answer is temperror
retry_seconds = 300                    # a temperror mail is checked again after this …
retries = 6                            # … this many times, then decided unauthenticated

[issuers.city]
auth = "dkim"            # the issuer side: contractors' mail to this issuer
[issuers.city.submission]
auth = "none"            # the contractor side: this issuer's answers (config check warns)
```
"""

from __future__ import annotations

import ipaddress
from typing import Any

from mailbot.auth import AuthSettings, Requirement
from mailbot.auth.dns import parse_resolver

from .reader import Item, Key
from .values import count, section, string_list

REQUIREMENTS = tuple(r.value for r in Requirement)


def requirement(item: Item) -> Requirement:
    value = item.data.get(item.key)
    if value is None:
        return item.default
    if value not in REQUIREMENTS:
        raise item.fail(f"must be one of {', '.join(REQUIREMENTS)}, not {value!r}")
    return Requirement(value)


def _ids(item: Item) -> tuple[str, ...]:
    ids = string_list(item)
    for value in ids:
        if not value.strip() or any(c.isspace() or c in ";()" for c in value.strip()):
            raise item.fail(f"{value!r} is not an authserv-id (a host name like "
                            "mx.example.jp)")
    return tuple(v.strip().lower() for v in ids)


def _resolvers(item: Item) -> tuple[str, ...]:
    resolvers = string_list(item)
    for value in resolvers:
        try:
            host, port = parse_resolver(value)
            ipaddress.ip_address(host)
            if not 0 < port < 65536:
                raise ValueError(port)
        except ValueError:
            raise item.fail(f"{value!r} is not an IP address with an optional port "
                            "(192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:53)") from None
    return resolvers


def _timeout(item: Item) -> float:
    value = item.data.get(item.key, item.default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 60:
        raise item.fail("must be a number of seconds above 0, at most 60")
    return float(value)


AUTH_KEYS = {
    "require": Key(requirement),
    "authserv_ids": Key(_ids),
    "resolvers": Key(_resolvers),
    "timeout_seconds": Key(_timeout),
    "retry_seconds": Key(count),
    "retries": Key(count),
}


def read_auth(item: Item) -> AuthSettings:
    """The `[auth]` table as `AuthSettings` (the defaults when absent)."""
    settings: AuthSettings = section(AuthSettings, keys=AUTH_KEYS)(item)
    return settings


def read_overrides(item: Item) -> dict[tuple[str, str], Requirement]:
    """(issuer ID, side) → requirement, from `[issuers.ID] auth` (side "issuer") and
    `[issuers.ID.submission] auth` (side "contractor")."""
    item.value("issuers")  # every [issuers.ID] is a table
    table: dict[str, Any] = item.r.table(item.data, item.key, optional=True)
    found: dict[tuple[str, str], Requirement] = {}
    for issuer, data in table.items():
        for side, where in (("issuer", data), ("contractor", data.get("submission"))):
            if not isinstance(where, dict) or "auth" not in where:
                continue
            path = f"issuers.{issuer}" + (".submission" if side == "contractor" else "")
            found[(issuer, side)] = requirement(Item(item.r, where, "auth", path, None, False))
    return found

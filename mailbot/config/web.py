"""`[web]`: the clerks' console (`mailbot web`, docs/console.md).

`listen = "HOST:PORT"` is where the console serves (loopback by default: put it behind a TLS
reverse proxy, never on a public address). `https = true` marks its session cookie Secure,
for a console reached only through the proxy's https. `session_hours` is how long a login
lasts without use. `trusted_proxies` are the addresses whose `X-Forwarded-For` is believed
for the client's address (login throttling and the audit trail); from anyone else the header
is ignored. `run_with_daemon = true` also serves it from `mailbot run`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .intake import _listen
from .reader import Item, key
from .values import boolean, count, strings


def _address(item: Item) -> tuple[str, int]:
    if item.absent:
        return ("127.0.0.1", 8080)
    return _listen(item)


def _proxies(item: Item) -> tuple[str, ...]:
    values = tuple(strings(item))
    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise item.fail(f"{value!r} is not an IP address") from None
    return values


@dataclass(frozen=True)
class WebConfig:
    listen: tuple[str, int] = key(_address, default=("127.0.0.1", 8080))
    https: bool = key(boolean, default=False)
    session_hours: int = key(count, default=8)
    trusted_proxies: tuple[str, ...] = key(_proxies, default=())
    run_with_daemon: bool = key(boolean, default=False)

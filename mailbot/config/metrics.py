"""`[metrics]`: the Prometheus endpoint and `/healthz` of `mailbot run`.

`listen = "HOST:PORT"` turns the HTTP server on (absent: no server, no metrics kept); port 0
picks a free one. `down_seconds` is how long a source (an IMAP inbox not connected, a
listener not bound) or the database may be down before `/healthz` answers 503.
"""

from __future__ import annotations

from dataclasses import dataclass

from .intake import _listen
from .reader import Item, key
from .values import count


def _address(item: Item) -> tuple[str, int] | None:
    """HOST:PORT (``[::1]:9464`` for IPv6); None when absent."""
    if item.absent:
        return None
    return _listen(item)


@dataclass(frozen=True)
class MetricsConfig:
    listen: tuple[str, int] | None = key(_address, default=None)
    down_seconds: int = key(count, default=300)

    @property
    def enabled(self) -> bool:
        return self.listen is not None

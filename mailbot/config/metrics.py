"""`[metrics]`: the Prometheus endpoint and `/healthz` of `mailbot run`.

`listen = "HOST:PORT"` turns the HTTP server on (absent: no server, no metrics kept); port 0
picks a free one. `down_seconds` is how long a source (an IMAP inbox not connected, a
listener not bound) or the database may be down before `/healthz` answers 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .intake import _listen
from .reader import Item, key
from .values import count, section

WILDCARDS = ("", "0.0.0.0", "::")


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


def read_metrics(item: Item) -> MetricsConfig:
    """`[metrics]`, refused when its listen is a mailbox listener's: `config check` said ok
    and `mailbot run` then died binding its second socket, restarted by systemd for ever."""
    metrics: MetricsConfig = section(MetricsConfig)(item)
    if metrics.listen is None or metrics.listen[1] == 0:
        return metrics
    host, port = metrics.listen
    mailboxes: Any = item.value("mailboxes")
    for mailbox in mailboxes:
        if mailbox.kind == "imap" or mailbox.listen_port != port:
            continue
        if host == mailbox.listen_host or host in WILDCARDS or mailbox.listen_host in WILDCARDS:
            raise item.fail(f"{host}:{port} is also the listener of mailbox {mailbox.name!r}: "
                            "choose another port", "metrics.listen")
    return metrics

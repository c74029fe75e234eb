"""`[cluster]`: this node's name and the lease and claim times of a mailbot cluster.

Several `mailbot run` processes (nodes, usually on separate hosts) may share one PostgreSQL
store (docs/cluster.md). Each IMAP mailbox is watched by one node at a time, each
scheduled job runs on one node per tick; a node that stops renewing loses them after
`lease_seconds`, and the rows it had in hand return to the queue `claim_seconds` after
it last renewed them. With one node (and with SQLite) nothing needs to be set.

```toml
[cluster]
node = "mailbot-1"        # default: the host name; unique in the cluster
lease_seconds = 30        # a dead node's mailboxes and jobs are taken over within this
claim_seconds = 300       # a dead node's messages in hand go back in line after this
```
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from .reader import Item, Reader, key
from .values import count, text

NODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")


def default_node() -> str:
    """The host name, cut to what a node name may hold."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:120].strip("-._")
    return name or "mailbot"


def _node(item: Item) -> str:
    value: str = text(item)
    if not NODE_RE.fullmatch(value):
        raise item.fail("must be 1 to 120 letters, digits, '.', '_' or '-', starting with "
                        "a letter or digit")
    return value


def _seconds(low: int, high: int) -> Reader:
    def read(item: Item) -> int:
        value = count(item)
        if not low <= value <= high:
            raise item.fail(f"must be {low} to {high} seconds")
        return value
    return read


@dataclass(frozen=True)
class ClusterConfig:
    node: str = key(_node, default_factory=default_node)
    lease_seconds: int = key(_seconds(3, 3600), default=30)
    claim_seconds: int = key(_seconds(10, 86400), default=300)

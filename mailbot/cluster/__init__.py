"""Several `mailbot run` nodes on one PostgreSQL store (docs/cluster.md).

`leases` owns the lease rows (mailbox, job and node leases, timed by the database's
clock); `node` is one process's identity and the thread that keeps its leases and claims
alive; `mailboxes` starts and stops IMAP watchers as the node gains and loses their leases;
`jobs` runs a scheduled job once per tick across the cluster.
"""

from .jobs import JobRunner
from .leases import Lease, LeaseRow, Leases, lease_rows
from .node import Node

__all__ = ["JobRunner", "Lease", "LeaseRow", "Leases", "Node", "lease_rows"]

"""A scheduled job once per tick across the cluster: every node's scheduler fires, the
node that takes the job's lease for that tick (`Leases.start_tick`) runs it, the others
skip it. A run left unfinished by a node that died is taken over by another node at its
next heartbeat (`resume`), under the same tick."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from .leases import Leases

log = logging.getLogger("mailbot.cluster.jobs")
JST = ZoneInfo("Asia/Tokyo")


def interval_tick(now: datetime, seconds: float) -> str:
    """The tick of an interval job at `now`: the count of whole intervals since the epoch,
    zero-padded so that ticks compare as strings."""
    return f"i{int(now.timestamp() // max(1.0, seconds)):014d}"


def daily_tick(now: datetime) -> str:
    """The tick of a daily job: the date in Japan."""
    return f"d{now.astimezone(JST):%Y-%m-%d}"


class JobRunner:
    """Runs the jobs of one node under their leases (`job:<name>`)."""

    def __init__(self, leases: Leases) -> None:
        self.leases = leases
        self.jobs: dict[str, Callable[[], object]] = {}
        self.ran: dict[str, int] = {}  # runs of each job on this node, for status/tests

    def run(self, name: str, tick: str, job: Callable[[], object]) -> bool:
        """Run `job` if this node takes tick `tick` of job `name`; True when it ran.

        A job that raises is still finished: it logs its own errors and is tried at its
        next tick, as on one node."""
        self.jobs[name] = job
        lease = self.leases.start_tick(f"job:{name}", tick)
        if lease is None:
            return False
        try:
            job()
        finally:
            self.ran[name] = self.ran.get(name, 0) + 1
            if not self.leases.finish_tick(lease):
                log.warning("job %s, run %s: its lease was lost while it ran (the node was "
                            "too slow to renew it); another node may run it again", name, tick)
        return True

    def resume(self) -> None:
        """Take over runs that a node left unfinished (it died while running them)."""
        for name, job in list(self.jobs.items()):
            tick = self.leases.unfinished(f"job:{name}")
            if tick is not None:
                log.warning("job %s, run %s, was left unfinished by a node that stopped: "
                            "running it here", name, tick)
                self.run(name, tick, job)

"""One node of the cluster: its identity and the heartbeat that keeps it in charge.

A node is one `mailbot run` process. At start it takes the lease `node:<name>` (a second
process with the same name waits for the first's lease to run out, then gives up, so two
processes never share a name and their claims). Its heartbeat thread, every third of the
lease time:
- renews its leases (node, mailboxes, running jobs) and its ledger claims;
- returns rows whose claim ran out (a dead node's messages in hand) to the queue;
- takes the lease of each IMAP mailbox no live node watches, and starts its watcher;
- stops a watcher whose lease it could not renew in time (self-fencing: the database was
  out of reach for the lease time, so another node may have taken the mailbox over);
- takes over a job run a dead node left unfinished (on a thread of its own).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from mailbot.errors import UsageError
from mailbot.ledger import Ledger

from .jobs import JobRunner
from .leases import Leases, incarnation

log = logging.getLogger("mailbot.cluster")


@dataclass
class Watched:
    """An IMAP mailbox this node may watch: how to start and stop its watcher."""

    name: str
    start: Callable[[], None]
    stop: Callable[[], None]
    running: bool = False


@dataclass
class NodeState:
    """What the heartbeat last saw, for the monitor."""

    held: set[str] = field(default_factory=set)
    last_renewal: float = 0.0  # time.monotonic() of the last renewal that succeeded
    failures: int = 0


class Node:
    def __init__(self, name: str, ledger: Ledger, *, lease_seconds: float,
                 claim_seconds: float, place: str | None = None) -> None:
        self.name = name
        self.place = place  # host:working folder, whose lock the daemon holds
        self.holder = incarnation(name)
        self.ledger = ledger
        self.leases = Leases(ledger.engine, self.holder, lease_seconds)
        self.lease_seconds = lease_seconds
        self.claim_seconds = claim_seconds
        self.jobs = JobRunner(self.leases)
        self.state = NodeState()
        self.mailboxes: dict[str, Watched] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._resuming: threading.Thread | None = None
        self.chores: list[Callable[[set[str]], None]] = []  # each beat, with the live holders
        # The ledger rows this process is deciding (`Pipeline.in_hand`); None: every row
        # claimed by this holder is renewed.
        self.in_hand: Callable[[], Collection[int]] | None = None

    @property
    def interval(self) -> float:
        return max(0.5, self.lease_seconds / 3)

    def join(self, stop: threading.Event) -> None:
        """Take this node's name. An earlier run in the same place (it held the working
        folder's lock we hold now) is dead: its lease is taken at once. A lease held from
        another place is waited out (up to the lease time and a little): that is a run
        killed on another host, or a second process given the same name."""
        deadline = time.monotonic() + self.lease_seconds + 5
        waited = False
        while self.leases.hold(f"node:{self.name}", self.place) is None:
            if time.monotonic() > deadline or stop.is_set():
                raise UsageError(f"another mailbot run is already the cluster node named "
                                 f"{self.name!r} ([cluster] node must differ per process)")
            if not waited:
                log.warning("node %s: waiting for the lease of its previous run to expire",
                            self.name)
                waited = True
            stop.wait(min(1.0, self.interval))
        self.state.last_renewal = time.monotonic()
        ended = self.leases.end_earlier_runs(self.name)
        if ended:
            log.warning("node %s: took over %d lease(s) of its previous run", self.name, ended)
        log.info("cluster node %s (%s) joined", self.name, self.holder,
                 extra={"node": self.name, "holder": self.holder})

    def watch(self, name: str, start: Callable[[], None], stop: Callable[[], None]) -> None:
        """Register an IMAP mailbox: watched here while this node holds `mailbox:<name>`."""
        self.mailboxes[name] = Watched(name, start, stop)

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="cluster-heartbeat", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """A clean stop: watchers stopped, mailbox leases given up so that another node
        takes them over at its next heartbeat."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            for watched in self.mailboxes.values():
                if watched.running:
                    watched.stop()
                    watched.running = False
        # Only the mailboxes are given up at once: a job still running on the scheduler's
        # thread keeps its run, and the node lease keeps what it was sending its own, until
        # they expire by themselves (a run cut short is then taken over; nothing twice).
        for name in self.mailboxes:
            try:
                self.leases.release(f"mailbox:{name}")
            except Exception:
                log.warning("node %s: could not give the lease of %s up (it expires by "
                            "itself)", self.name, name, exc_info=True)
                break

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        """One heartbeat (see the module's docstring); never raises."""
        try:
            held = {lease.name for lease in self.leases.renew_all()}
            self.ledger.renew_claims(self.holder, self.claim_seconds,
                                     self.in_hand() if self.in_hand is not None else None)
        except Exception as exc:
            self.state.failures += 1
            log.warning("node %s: cannot renew its leases (%d in a row): %s", self.name,
                        self.state.failures, exc)
            self._fence()
            return
        self.state.failures = 0
        self.state.last_renewal = time.monotonic()
        if f"node:{self.name}" not in held:
            # Out of reach for longer than the lease: take the name again before acting.
            if self.leases.hold(f"node:{self.name}", self.place) is None:
                log.error("node %s: another process took this node's name", self.name)
                self._fence(force=True)
                return
            held.add(f"node:{self.name}")
        try:
            reclaimed = self.ledger.reclaim_expired()
            if reclaimed:
                log.warning("%d message(s) in hand at a node that stopped renewing its "
                            "claims are back in line", reclaimed)
            self._mailboxes(held)
            if self.chores:
                live = self.leases.live_holders()
                for chore in self.chores:
                    chore(live)
            self._resume()
        except Exception:
            log.warning("node %s: heartbeat step failed", self.name, exc_info=True)
        self.state.held = held

    def _resume(self) -> None:
        """Take over unfinished job runs on a thread of their own: a digest may take longer
        than the lease, and the heartbeat must go on renewing meanwhile."""
        if self._resuming is not None and self._resuming.is_alive():
            return
        if not self.jobs.jobs:
            return

        def resume() -> None:
            try:
                self.jobs.resume()
            except Exception:
                log.warning("node %s: taking over an unfinished job run failed", self.name,
                            exc_info=True)
        self._resuming = threading.Thread(target=resume, name="cluster-resume", daemon=True)
        self._resuming.start()

    def _mailboxes(self, held: set[str]) -> None:
        with self._lock:
            for name, watched in self.mailboxes.items():
                lease = f"mailbox:{name}"
                if lease not in held and not self._stop.is_set():
                    if self.leases.hold(lease) is not None:
                        held.add(lease)
                if lease in held and not watched.running:
                    log.info("node %s: watching mailbox %s", self.name, name,
                             extra={"node": self.name, "mailbox": name})
                    watched.start()
                    watched.running = True
                elif lease not in held and watched.running:
                    log.warning("node %s: lost the lease of mailbox %s; its watcher stops",
                                self.name, name)
                    watched.stop()
                    watched.running = False

    def _fence(self, force: bool = False) -> None:
        """Stop watching when this node can no longer be sure it holds its mailboxes: its
        last renewal is older than the lease time less one heartbeat."""
        if not force and time.monotonic() - self.state.last_renewal < (
                self.lease_seconds - self.interval):
            return
        with self._lock:
            for watched in self.mailboxes.values():
                if watched.running:
                    log.warning("node %s: stops watching %s (leases not renewed in time)",
                                self.name, watched.name)
                    watched.stop()
                    watched.running = False
        self.state.held = set()

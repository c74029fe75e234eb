"""The Prometheus metrics of `mailbot run`, in a registry of their own.

Counters and the read-time histogram are bumped where things happen (a few microseconds,
no database work); what the database holds (the outbox by state, each mailbox's backlog and
its oldest undecided message) is read once per scrape by `StoreCollector`. Each `Metrics`
has its own `CollectorRegistry`, so two daemons in one process (tests) never share a count.

| metric | kind | labels |
|---|---|---|
| `mailbot_messages_total` | counter | mailbox, status: received, decided, duplicate, quarantined |
| `mailbot_outcomes_total` | counter | outcome (the codes of `mailbot.verify.outcomes`) |
| `mailbot_read_seconds` | histogram | — (one observation per notice PDF read) |
| `mailbot_auth_verdicts_total` | counter | result: pass, dkim, none, fail, forged, temperror, unchecked |
| `mailbot_auth_seconds` | histogram | — (one observation per mail authenticated) |
| `mailbot_auth_deferrals_total` | counter | mailbox (a mail put back to wait for DNS) |
| `mailbot_source_up` | gauge | mailbox (1: IMAP connected / listener bound) |
| `mailbot_build_info` | gauge (1) | version |
| `mailbot_outbox_messages` | gauge, per scrape | state |
| `mailbot_backlog_messages` | gauge, per scrape | mailbox |
| `mailbot_oldest_waiting_seconds` | gauge, per scrape | mailbox |
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from mailbot import __version__
from mailbot.backlog import backlogs
from mailbot.ledger.ledger import oldest_waiting_by_mailbox
from mailbot.outbox.rows import state_counts

log = logging.getLogger("mailbot.monitor")

# Seconds per notice PDF: most read in a tenth of a second, a scanned one in several, the
# sandbox's timeout ends the worst.
READ_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds per mail: an Authentication-Results header is read in microseconds, a DKIM key
# lookup takes a DNS round trip, a silent resolver the whole timeout.
AUTH_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)
MESSAGE_STATUSES = ("received", "decided", "duplicate", "quarantined")


class Metrics:
    """The counters, gauges and histogram of one daemon."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter("mailbot_messages", "Messages by mailbox and what became of them "
                                "(received, decided, duplicate, quarantined).",
                                ["mailbox", "status"], registry=self.registry)
        self.outcomes = Counter("mailbot_outcomes", "Outcome codes of the decisions.",
                                ["outcome"], registry=self.registry)
        self.read_seconds = Histogram("mailbot_read_seconds", "Time to read one notice PDF "
                                      "(queued in the worker pool and read).",
                                      buckets=READ_BUCKETS, registry=self.registry)
        self.auth_verdicts = Counter("mailbot_auth_verdicts", "Authentication verdicts on "
                                     "mail authors, by result.", ["result"],
                                     registry=self.registry)
        self.auth_seconds = Histogram("mailbot_auth_seconds", "Time to authenticate one mail "
                                      "(DKIM, SPF, DMARC, ARC).", buckets=AUTH_BUCKETS,
                                      registry=self.registry)
        self.auth_deferrals = Counter("mailbot_auth_deferrals", "Mail put back to wait for "
                                      "DNS (its authentication met a temperror).",
                                      ["mailbox"], registry=self.registry)
        self.source_up = Gauge("mailbot_source_up", "1 while the mailbox's source is up (IMAP "
                               "connected, listener bound).", ["mailbox"], registry=self.registry)
        build = Gauge("mailbot_build_info", "The mailbot version running.", ["version"],
                      registry=self.registry)
        build.labels(version=__version__).set(1)

    def mailbox(self, name: str) -> None:
        """Show every status of `name` from the start, at 0 (a rate needs a first sample)."""
        for status in MESSAGE_STATUSES:
            self.messages.labels(mailbox=name, status=status)
        self.auth_deferrals.labels(mailbox=name)


class StoreCollector(Collector):
    """The gauges read from the database at each scrape. A database that cannot be read
    gives none of them (the scrape still succeeds) and is reported through `on_database`."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime],
                 on_database: Callable[[bool], None]) -> None:
        self.engine = engine
        self.clock = clock
        self.on_database = on_database

    def describe(self) -> list[Metric]:
        return []  # no database read at registration

    def collect(self) -> Iterator[Metric]:
        try:
            families = self._read()
        except Exception as exc:
            log.warning("metrics: the database could not be read: %s", type(exc).__name__)
            self.on_database(False)
            return
        self.on_database(True)
        yield from families

    def _read(self) -> list[Metric]:
        states = GaugeMetricFamily("mailbot_outbox_messages", "Outgoing mail by state.",
                                   labels=["state"])
        waiting = GaugeMetricFamily("mailbot_backlog_messages", "What waits or is stuck, per "
                                    "mailbox (the figure `mailbot status` shows).",
                                    labels=["mailbox"])
        oldest = GaugeMetricFamily("mailbot_oldest_waiting_seconds", "Age of the oldest "
                                   "message not yet decided, per mailbox.", labels=["mailbox"])
        now = self.clock()
        with self.engine.connect() as conn:
            for state, count in sorted(state_counts(conn).items()):
                states.add_metric([str(state)], count)
            for mailbox, backlog in sorted(backlogs(conn).items()):
                waiting.add_metric([mailbox], backlog.total)
            for mailbox, first in sorted(oldest_waiting_by_mailbox(conn).items()):
                oldest.add_metric([mailbox], max(0.0, (now - first).total_seconds()))
        return [states, waiting, oldest, *self._cluster()]

    def _cluster(self) -> list[Metric]:
        """Who holds which lease (docs/cluster.md), and claims past their expiry."""
        from mailbot.cluster.view import cluster_report

        report = cluster_report(self.engine, [])
        holder = GaugeMetricFamily("mailbot_lease_held", "1 for each lease (node:, mailbox:, "
                                   "job:) and the node holding it; 0 once it has expired.",
                                   labels=["lease", "node"])
        for lease in report["leases"]:
            holder.add_metric([lease["lease"], lease["node"]], 0 if lease["expired"] else 1)
        expired = GaugeMetricFamily("mailbot_claims_expired", "Rows claimed by a node past "
                                    "their expiry (ledger) or by a node that stopped "
                                    "(outbox), not yet back in line.", labels=["kind"])
        expired.add_metric(["ledger"], report["expired_claims"])
        expired.add_metric(["outbox"], report["dead_sending"])
        return [holder, expired]

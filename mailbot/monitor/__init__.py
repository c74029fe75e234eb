"""Metrics and health of `mailbot run` (`[metrics]`): what the daemon tells its monitoring.

The daemon owns one `Monitor`. Its parts report to it as things happen: the sources what
came in and whether they are up, the pipeline each decision, quarantine, authentication verdict and deferral, the pipeline
loop whether the database answered; PDF reading is timed by wrapping the reader's runner
(`timed`). With `[metrics] listen` set, `start()` serves `/metrics` and `/healthz` over
HTTP (`mailbot.monitor.server`); without it the monitor keeps nothing and every report is
a no-op, so a daemon without `[metrics]` pays nothing.

See docs/monitoring.md for the metrics and what `/healthz` answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Engine

from mailbot.config import MetricsConfig
from parsers.pdfread import PdfReading
from parsers.sandbox import PdfRunner

from .health import Health, Verdict
from .metrics import Metrics, StoreCollector
from .server import MetricsServer

__all__ = ["Health", "Metrics", "MetricsServer", "Monitor", "TimedRunner", "Verdict"]


class TimedRunner:
    """A PDF runner that observes each PDF's time, from submission to its reading done."""

    def __init__(self, runner: PdfRunner, observe: Callable[[float], None]) -> None:
        self.runner = runner
        self.observe = observe

    def submit(self, data: bytes, origin: str) -> Future[PdfReading]:
        started = time.monotonic()
        future = self.runner.submit(data, origin)
        future.add_done_callback(lambda _f: self.observe(time.monotonic() - started))
        return future

    def result(self, future: Future[PdfReading], origin: str) -> PdfReading:
        return self.runner.result(future, origin)

    def close(self) -> None:
        self.runner.close()


class Monitor:
    """The daemon's metrics and health; every method is safe from any thread."""

    def __init__(self, config: MetricsConfig | None = None, engine: Engine | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.config = config or MetricsConfig()
        self.engine = engine
        self.health = Health(self.config.down_seconds)
        self.metrics: Metrics | None = None
        self.server: MetricsServer | None = None
        if self.config.enabled:
            self.metrics = Metrics()
            if engine is not None and clock is not None:
                self.metrics.registry.register(StoreCollector(engine, clock, self.database))

    # -- reports ------------------------------------------------------------------------
    def mailbox(self, name: str) -> None:
        """A source of mailbox `name` is starting: down until it says it is up."""
        self.source(name, False)
        if self.metrics is not None:
            self.metrics.mailbox(name)

    def source(self, mailbox: str, up: bool) -> None:
        if self.metrics is None:
            return
        self.health.source(mailbox, up)
        self.metrics.source_up.labels(mailbox=mailbox).set(1 if up else 0)

    def source_reporter(self, mailbox: str) -> Callable[[bool], None]:
        """The callback a source calls with True (connected, bound) or False."""
        return lambda up: self.source(mailbox, up)

    def database(self, up: bool) -> None:
        if self.metrics is not None:
            self.health.database(up)

    def received(self, mailbox: str, count: int = 1) -> None:
        if self.metrics is not None and count:
            self.metrics.messages.labels(mailbox=mailbox, status="received").inc(count)

    def decided(self, mailbox: str, status: str, outcomes: list[str]) -> None:
        """A decision recorded: a duplicate copy is counted as such, not as decided."""
        if self.metrics is None:
            return
        kind = "duplicate" if status == "duplicate" else "decided"
        self.metrics.messages.labels(mailbox=mailbox, status=kind).inc()
        for outcome in outcomes:
            self.metrics.outcomes.labels(outcome=str(outcome)).inc()

    def authenticated(self, result: str, seconds: float) -> None:
        """A mail's author checked: the verdict in one word and how long the checks took."""
        if self.metrics is not None:
            self.metrics.auth_verdicts.labels(result=result).inc()
            self.metrics.auth_seconds.observe(seconds)

    def deferred(self, mailbox: str) -> None:
        """A mail waits for DNS (its authentication met a `temperror`)."""
        if self.metrics is not None:
            self.metrics.auth_deferrals.labels(mailbox=mailbox).inc()

    def quarantined(self, mailbox: str) -> None:
        if self.metrics is not None:
            self.metrics.messages.labels(mailbox=mailbox, status="quarantined").inc()

    def timed(self, runner: PdfRunner) -> PdfRunner:
        """`runner`, timing each PDF into `mailbot_read_seconds` (itself when metrics are off)."""
        if self.metrics is None:
            return runner
        return TimedRunner(runner, self.metrics.read_seconds.observe)

    def loop(self, name: str, alive: Callable[[], bool]) -> None:
        self.health.loop(name, alive)

    # -- serving ------------------------------------------------------------------------
    def check(self) -> Verdict:
        """`/healthz`: the database is asked first (a cheap `SELECT 1`), so its recovery is
        seen at once, not at the pipeline's next try."""
        if self.engine is not None:
            try:
                with self.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except Exception:
                self.health.database(False)
            else:
                self.health.database(True)
        return self.health.check()

    def start(self) -> None:
        """Serve `/metrics` and `/healthz` when `[metrics] listen` is set."""
        if self.metrics is None or self.config.listen is None or self.server is not None:
            return
        host, port = self.config.listen
        self.server = MetricsServer(host, port, self.metrics.registry, self.check)

    @property
    def port(self) -> int | None:
        return self.server.port if self.server is not None else None

    def stop(self) -> None:
        self.health.stopping = True
        if self.server is not None:
            self.server.stop()
            self.server = None

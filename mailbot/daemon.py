"""`mailbot run`: sources, pipeline and scheduler in one process.

Sources (an IMAP watcher per IMAP mailbox, an SMTP/LMTP listener per listener mailbox)
only spool and record messages in the ledger. The pipeline loop claims them one at a time,
authenticates their author (`mailbot.pipeline.authenticate`), decides them and records the
decision, reply request and mailbox action in one transaction; a crash counts an attempt,
the third quarantines the message with its traceback. A DNS `temperror` puts the mail back
to wait (`Ledger.defer`, no attempt counted) until the clock passes its `not_before` (the
loop looks again every second). The scheduler (APScheduler 3) runs the IMAP re-sync, the
outbox (render, send in the window, retry), reminders and digests (`mailbot.outgoing`).
SIGTERM/SIGINT let the message in hand finish, then stop everything; a `kill -9` loses
nothing, since the ledger is the state.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import threading
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from typing import Any

from mailbot.cluster import Node
from mailbot.cluster.jobs import daily_tick, interval_tick
from mailbot.config import Config, MailboxConfig
from mailbot.deciding import Pipeline, wall_clock
from mailbot.errors import UsageError
from mailbot.ledger import Ledger, spool_for
from mailbot.monitor import Monitor
from mailbot.outgoing import Outgoing
from mailbot.retention import daily_job
from mailbot.store import Store
from parsers import Limits, PdfPool, Reader

__all__ = ["Daemon", "Pipeline", "wall_clock"]
log = logging.getLogger("mailbot.daemon")

RESYNC_MINUTES = 10
REMIND_MINUTES = 30


class Daemon:
    def __init__(self, config: Config, store: Store, *, workers: int = 2,
                 since: date | None = None, reply_to_backfill: bool | None = None,
                 limits: Limits | None = None, outbox_seconds: float | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.store = store
        self.ledger = Ledger(store.engine, spool_for(config, store))
        self.pool = PdfPool(workers, limits or Limits())
        self.clock = clock or wall_clock
        self.monitor = Monitor(config.metrics, store.engine, self.clock)  # [metrics], /healthz
        # This process as a cluster node: mailbox and job leases, claims (docs/cluster.md).
        self.node = Node(config.cluster.node, self.ledger,
                         lease_seconds=config.cluster.lease_seconds,
                         claim_seconds=config.cluster.claim_seconds,
                         place=f"{socket.gethostname()}:{self.ledger.spool.folder.resolve()}")
        self.pipeline = Pipeline(config, store, self.ledger,
                                 Reader(self.monitor.timed(self.pool), self.pool.limits),
                                 clock=self.clock, monitor=self.monitor, holder=self.node.holder)
        self.node.in_hand = self.pipeline.in_hand  # the only claims its heartbeat renews
        self.since = since
        self.pipelines = workers + 1
        self.outbox_seconds = outbox_seconds or config.smtp.flush_seconds
        self.outgoing = Outgoing(config, store)  # the replier and the submitter
        self.outgoing.outbox.holder = self.node.holder
        self.reply_to_backfill = reply_to_backfill
        self.stop = threading.Event()
        self.news = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watchers: dict[str, tuple[Any, threading.Thread, threading.Event]] = {}
        self._listeners: list[Any] = []
        self._scheduler: Any = None
        self._lock_file: Any = None
        self._purge: Callable[[], None] = daily_job(config, store, self.clock)

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self.config.reveal_secrets()  # a password that cannot be read stops us here (exit 2)
        self._lock_spool()
        self.monitor.start()
        self.node.join(self.stop)  # waits out an earlier run's node lease (kill -9)
        recovered = self.ledger.recover(self.node.holder)
        if recovered:
            log.warning("recovered %d message(s) left in processing by a previous run", recovered)
        interrupted = self.outgoing.outbox.recover(self.clock())
        if interrupted:
            log.warning("%d outgoing mail(s) were being sent when a previous run stopped: "
                        "they go again with the same Message-ID", interrupted)
        for mailbox in self.config.mailboxes:
            if mailbox.kind == "imap":  # watched while this node holds its lease
                self.monitor.mailbox(mailbox.name)
                self.monitor.source(mailbox.name, True)  # standby counts as healthy
                self.monitor.loop(f"IMAP watcher {mailbox.name}",
                                  partial(self._watcher_alive, mailbox.name))
                self.node.watch(mailbox.name, partial(self._start_watcher, mailbox),
                                partial(self._stop_watcher, mailbox.name))
        self.node.chores.append(self._reclaim_dead)
        self.node.start()  # its first heartbeat takes the free mailboxes
        self.monitor.loop("cluster heartbeat", self.node.alive)
        self._start_listeners()
        self._start_scheduler()
        self.news.set()  # decide what is already waiting

    def run(self) -> None:
        """The pipeline loops, until `stop` is set: this thread and `pipelines - 1` more, so
        that one message's PDF reading overlaps another's verification and commits."""
        extra = [
            threading.Thread(target=self._loop, name=f"pipeline-{n}", daemon=True)
            for n in range(1, self.pipelines)
        ]
        for thread in extra:
            thread.start()
        for thread in [threading.current_thread(), *extra]:
            self.monitor.loop(f"pipeline loop {thread.name}", thread.is_alive)
        self._loop()
        for thread in extra:
            thread.join(timeout=60)

    def _loop(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                worked = self.pipeline.process_one()
            except Exception:  # the database itself failed (locked, restarted): back off
                failures += 1
                log.exception("the pipeline could not reach the ledger (%d in a row)", failures)
                self.monitor.database(False)
                self.stop.wait(min(60.0, 2.0 ** min(failures, 6)))
                continue
            failures = 0
            self.monitor.database(True)
            if worked:
                self._wake_watchers()
                continue
            self.news.wait(timeout=1.0)
            self.news.clear()

    def request_stop(self) -> None:
        """Ask everything to stop; safe to call from a signal handler (sets the events from
        another thread: an Event's lock may be held by the very thread the signal
        interrupted)."""
        threading.Thread(target=self._set_stop, name="stop", daemon=True).start()

    def _set_stop(self) -> None:
        self.stop.set()
        self.news.set()

    def _lock_spool(self) -> None:
        """One daemon per spool: a second `mailbot run` would recover (and re-decide) the
        messages the first one has in hand. The lock dies with the process, even on kill -9."""
        path = self.ledger.spool.folder / ".mailbot-run.lock"
        self._lock_file = open(path, "a")  # noqa: SIM115 — held for the daemon's lifetime
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise UsageError(f"another mailbot run is already using the spool {path.parent}"
                             ) from None

    def shutdown(self) -> None:
        self.stop.set()
        self.news.set()
        self.monitor.stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        for listener in self._listeners:
            listener.stop()
        self.node.stop()  # stops the watchers, gives the leases up for another node
        for thread in self._threads:
            thread.join(timeout=15)
        self.pool.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock

    # -- parts --------------------------------------------------------------------------
    def _on_new(self, count: int) -> None:
        if count:
            self.news.set()

    def _received(self, mailbox: str, count: int) -> None:
        self.monitor.received(mailbox, count)
        self._on_new(count)

    def _start_watcher(self, mailbox: MailboxConfig) -> None:
        """Watch `mailbox` (this node took its lease)."""
        from mailbot.sources.imap import ImapSettings, ImapWatcher

        settings = ImapSettings(
            name=mailbox.name, host=mailbox.host, port=mailbox.port, user=mailbox.user,
            password=mailbox.password.reveal() if mailbox.password else "", tls=mailbox.tls,
            folder=mailbox.folder,
            poll_seconds=mailbox.poll_seconds, idle_renew_seconds=mailbox.idle_renew_seconds,
            since=self.since or mailbox.since,
            reply_to_backfill=(self.reply_to_backfill if self.reply_to_backfill is not None
                               else mailbox.reply_to_backfill),
        )
        self.monitor.mailbox(mailbox.name)
        watcher = ImapWatcher(settings, self.ledger, on_new=partial(self._received, mailbox.name),
                              progress=True, on_state=self.monitor.source_reporter(mailbox.name))
        stop = threading.Event()
        thread = threading.Thread(target=watcher.run, args=(stop,),
                                  name=f"imap-{mailbox.name}", daemon=True)
        self._watchers[mailbox.name] = (watcher, thread, stop)
        thread.start()

    def _stop_watcher(self, name: str) -> None:
        """Stop watching `name` (its lease is lost or given up); the watcher finishes the
        message in hand, which the ledger keeps from being taken twice."""
        found = self._watchers.pop(name, None)
        if found is None:
            return
        watcher, thread, stop = found
        stop.set()
        wake: Callable[[], None] | None = getattr(watcher, "wake", None)
        if wake is not None:
            wake()
        thread.join(timeout=15)
        watcher.close()
        self.monitor.source(name, True)  # standby again

    def _watcher_alive(self, name: str) -> bool:
        found = self._watchers.get(name)
        return found is None or found[1].is_alive()

    def _reclaim_dead(self, live: set[str]) -> None:
        """What a dead node had in hand goes back in line: ledger rows, and outbox rows it
        was sending (again with the same Message-ID)."""
        back = self.ledger.reclaim_dead(live)
        if back:
            log.warning("%d message(s) in hand at a node that stopped are back in line", back)
            self.news.set()
        again = self.outgoing.outbox.reclaim_dead(live, self.clock())
        if again:
            log.warning("%d outgoing mail(s) were being sent by a node that stopped: they go "
                        "again with the same Message-ID", again)

    def _start_listeners(self) -> None:
        from mailbot.sources.smtp import IntakeListener, ListenerSettings

        by_endpoint: dict[tuple[str, int, bool], list[MailboxConfig]] = {}
        for mailbox in self.config.mailboxes:
            if mailbox.kind in ("smtp", "lmtp"):
                key = (mailbox.listen_host, mailbox.listen_port, mailbox.kind == "lmtp")
                by_endpoint.setdefault(key, []).append(mailbox)
        for (host, port, lmtp), mailboxes in by_endpoint.items():
            settings = ListenerSettings(
                host=host, port=port, lmtp=lmtp,
                max_message_bytes=max(m.max_message_bytes for m in mailboxes),
                mailboxes={a: m.name for m in mailboxes for a in m.addresses},
                default_mailbox=next((m.name for m in mailboxes if not m.addresses), None),
            )
            listener = IntakeListener(settings, self.ledger, on_new=self._on_new,
                                      on_received=self.monitor.received)
            listener.start()
            for mailbox in mailboxes:
                self.monitor.mailbox(mailbox.name)
                self.monitor.source(mailbox.name, True)  # bound
            self._listeners.append(listener)
            log.info("listening for %s on %s:%d", "LMTP" if lmtp else "SMTP", host,
                     listener.port, extra={"mailboxes": sorted({m.name for m in mailboxes}),
                                           "port": listener.port})

    def _wake_watchers(self) -> None:
        for watcher, _thread, _stop in list(self._watchers.values()):
            wake: Callable[[], None] | None = getattr(watcher, "wake", None)
            if wake is not None:
                wake()

    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self._scheduler = BackgroundScheduler(timezone="Asia/Tokyo")
        # Business state lives in our tables; the job store holds nothing worth keeping.
        # misfire_grace_time is explicit (APScheduler's default of 1 s drops late runs).
        common = {"misfire_grace_time": 300, "coalesce": True, "max_instances": 1}
        self._scheduler.add_job(self.outbox_tick, "interval", seconds=self.outbox_seconds,
                                id="outbox", **common)
        if self.config.digest.enabled:
            at = self.config.digest.at
            self._scheduler.add_job(self.digest_tick, "cron", hour=at.hour, minute=at.minute,
                                    id="digest", **common)
        if self.config.contractor is not None:
            self._scheduler.add_job(self.remind_tick, "interval", minutes=REMIND_MINUTES,
                                    id="remind", **common)
        self._scheduler.add_job(self.purge_tick, "cron", id="purge",
                                hour=self.config.retention.at.hour,
                                minute=self.config.retention.at.minute, **common)
        if self._watchers:
            # A periodic full re-sync catches what IDLE missed (docs/reading.md).
            self._scheduler.add_job(self._wake_watchers, "interval", minutes=RESYNC_MINUTES,
                                    id="imap-resync", **common)
        self._scheduler.start()
        self.monitor.loop("scheduler", lambda: bool(self._scheduler.running))

    def _once(self, job: str, tick: str, work: Callable[[], object], failed: str) -> None:
        """Run `work` if this node takes run `tick` of `job` (once across the cluster)."""
        def guarded() -> None:
            try:
                work()
            except Exception:
                log.exception(failed)
        try:
            self.node.jobs.run(job, tick, guarded)
        except Exception:  # the lease itself could not be read: the database is out
            log.exception("job %s could not take its lease; it is tried at the next tick", job)

    def outbox_tick(self) -> None:
        """Render stored replies into the outbox and send what the window allows."""
        now = self.clock()

        def work() -> None:
            self.outgoing.queue(now)
            self.outgoing.flush(now)
        self._once("outbox", interval_tick(now, self.outbox_seconds), work,
                   "outbox run failed; it is tried again at the next tick")

    def digest_tick(self) -> None:
        now = self.clock()
        tick = daily_tick(now)
        self._once("digest", tick, partial(self.outgoing.digest, now, f"digest {tick}"),
                   "the staff digest could not be queued")

    def remind_tick(self) -> None:
        """Tell the contractor's staff about submissions no issuer has answered in time."""
        now = self.clock()
        self._once("remind", interval_tick(now, REMIND_MINUTES * 60),
                   partial(self.outgoing.submitter.remind, now),
                   "the reminder run failed; it is tried again at the next tick")

    def purge_tick(self) -> None:
        """The daily retention job (raw mail past `[retention] raw_days`)."""
        now = self.clock()
        self._once("purge", daily_tick(now), self._purge, "the daily purge failed")

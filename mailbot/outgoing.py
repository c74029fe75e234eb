"""Outgoing mail of one configuration: the outbox, wired to the tables that follow its rows,
with the issuer side's `Replier` and the contractor side's `Submitter` side by side.

`outbox_for()` is the outbox every part uses (the pipeline queues submissions with their
decision, the CLI lists and retries rows): the relay, the default window, one window per
issuer that names its own, and the submissions' listener. `Outgoing` is what the daemon's
scheduler drives: it queues stored replies, flushes the outbox, queues the digests and
reminders, and sends an alert to the right staff when a mail fails for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from mailbot.config import Config, WindowConfig
from mailbot.outbox import Outbox, OutboxRow, SendWindow, SmtpSettings
from mailbot.replies.replier import Replier
from mailbot.store import Store
from mailbot.submit import issuer_window, table
from mailbot.submit.bounce import KEY_PURPOSE, bounce_sender
from mailbot.submit.remind import Submitter

log = logging.getLogger("mailbot.outgoing")


def send_window(window: WindowConfig) -> SendWindow:
    return SendWindow(start=window.start, end=window.end, weekdays=window.weekdays,
                      skip_holidays=window.skip_holidays,
                      closed_days=(((12, 29), (1, 3)),) if window.year_end_closed else ())


def outbox_for(config: Config, store: Store) -> Outbox:
    """The outbox with the relay, the default window and one window per issuer that
    names its own (submissions go out in the receiving issuer's hours); the submissions
    follow their mail's state."""
    smtp = config.smtp
    return Outbox(
        store.engine,
        SmtpSettings(host=smtp.host, port=smtp.port, tls=smtp.tls, user=smtp.user,
                     password=smtp.password.reveal if smtp.password else None,
                     timeout=smtp.timeout),
        send_window(config.send_window),
        deadline=timedelta(hours=config.send_window.deadline_hours),
        windows={issuer_window(key): send_window(rule.window)
                 for key, rule in config.submissions.items() if rule.window is not None},
        listeners=[table.follow_outbox],
        resend_checks=[table.may_resend],
        envelope_sender=_bounce_senders(config, store),
    )


def _bounce_senders(config: Config, store: Store) -> Callable[[OutboxRow], str | None] | None:
    """With `[contractor] bounce_address`: each submission's envelope sender is its own
    tokened bounce address (`mailbot.submit.bounce`), computed from its Message-ID."""
    bounce = config.contractor.bounce_address if config.contractor is not None else None
    if not bounce:
        return None
    key = store.derived_key(KEY_PURPOSE)

    def sender(row: OutboxRow) -> str | None:
        return bounce_sender(bounce, key, row.message_id) if row.kind == "submission" else None

    return sender


class Outgoing:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.outbox = outbox_for(config, store)
        self.outbox.on_permanent_failure = self._failed_for_good
        self.replier = Replier(config, self.outbox)
        self.submitter = Submitter(config, self.outbox, send_window(config.send_window))

    def queue(self, now: datetime) -> int:
        """Render the stored reply requests into the outbox."""
        return self.replier.queue(now)

    def flush(self, now: datetime) -> None:
        """Send what is due inside the send window (and what is immediate)."""
        report = self.outbox.flush(now)
        if report.sent or report.failed:
            log.info("outbox: %d sent, %d deferred, %d failed, %d waiting", len(report.sent),
                     len(report.deferred), len(report.failed), report.waiting,
                     extra={"sent": len(report.sent), "deferred": len(report.deferred),
                            "failed": len(report.failed), "waiting": report.waiting})

    def digest(self, now: datetime, run: str | None = None) -> int:
        """Queue the daily digests (each issuer's, then the contractor's); returns how many
        were queued. `run` names the scheduled run (the daemon's `digest <tick>`): a run
        taken over by another node queues none of them twice."""
        return self.replier.digest(now, run) + int(self.submitter.digest(now, run))

    def _failed_for_good(self, row: OutboxRow) -> None:
        """Tell the staff of the side that wrote the mail (not for a failed alert)."""
        if row.kind == "alert":
            return
        if row.kind == "submission":  # the contractor side: its own staff must know
            self.submitter.alert_failed(row)
            return
        self.replier.alert_failed(row)

"""Replies end to end: stored reply requests → rendered mail in the outbox → the relay.

`Replier` is what the scheduler calls: `queue(now)` renders every stored reply request with
its issuer's template set, sender and charset (the Message-ID is fixed here, before the first
attempt); `flush(now)` sends what is due inside the send window; `digest(now)` queues each
issuer's daily staff digest; a reply that fails for good raises a staff alert. The clock is
always a parameter, so tests drive it without sleeping.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from mailbot.config import Config, WindowConfig
from mailbot.ledger.ledger import utc
from mailbot.outbox.outbox import Outbox, OutboxRow, ReplyRow, SmtpSettings
from mailbot.outbox.window import SendWindow
from mailbot.replies.render import (
    ReplySettings,
    new_message_id,
    render_reply,
    render_staff,
    template_dirs,
)
from mailbot.store import Store
from mailbot.store.schema import ledger, reply_requests
from mailbot.submit import issuer_window
from mailbot.submitting import Submitter
from mailbot.verify.policy import IssuerPolicy

log = logging.getLogger("mailbot.replying")


def send_window(window: WindowConfig) -> SendWindow:
    return SendWindow(start=window.start, end=window.end, weekdays=window.weekdays,
                      skip_holidays=window.skip_holidays,
                      closed_days=(((12, 29), (1, 3)),) if window.year_end_closed else ())


def outbox_for(config: Config, store: Store, on_failure: Any = None) -> Outbox:
    """The outbox with the relay, the default window and one window per issuer that
    names its own (submissions go out in the receiving issuer's hours)."""
    smtp = config.smtp
    return Outbox(
        store.engine,
        SmtpSettings(host=smtp.host, port=smtp.port, tls=smtp.tls, user=smtp.user,
                     password=smtp.password, timeout=smtp.timeout),
        send_window(config.send_window),
        deadline=timedelta(hours=config.send_window.deadline_hours),
        on_permanent_failure=on_failure,
        windows={issuer_window(key): send_window(rule.window)
                 for key, rule in config.submissions.items() if rule.window is not None},
    )


class Replier:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.outbox = outbox_for(config, store, on_failure=self._alert)
        self.submitter = Submitter(config, self.outbox, send_window(config.send_window))
        self._now = datetime.now(UTC)

    # -- settings per issuer ------------------------------------------------------------
    def _policy(self, issuer_name: str | None) -> IssuerPolicy:
        return self.config.issuer(issuer_name) if issuer_name else IssuerPolicy()

    def settings_for(self, policy: IssuerPolicy, template_set: str | None = None
                     ) -> ReplySettings:
        return ReplySettings(
            from_addr=policy.reply_from or self.config.smtp.from_addr,
            from_name=policy.reply_name or policy.name,
            charset=policy.charset,
            signature=policy.signature,
            template_set=template_set or policy.template_set,
            template_dirs=template_dirs(self.config.template_dir),
        )

    def _domain(self, settings: ReplySettings) -> str:
        return settings.from_addr.rsplit("@", 1)[-1] or "localhost"

    # -- the three jobs ---------------------------------------------------------------------
    def queue(self, now: datetime) -> int:
        immediate = set(self.config.send_window.immediate)
        return self.outbox.queue_replies(
            render=lambda row, message_id: self._render(row, message_id, now),
            message_id_for=lambda row: new_message_id(self._domain(self._row_settings(row))),
            now=now,
            immediate=lambda row: row.template in immediate,
        )

    def flush(self, now: datetime) -> None:
        self._now = now
        report = self.outbox.flush(now)
        if report.sent or report.failed:
            log.info("outbox: %d sent, %d deferred, %d failed, %d waiting", len(report.sent),
                     len(report.deferred), len(report.failed), report.waiting)

    def _row_settings(self, row: ReplyRow) -> ReplySettings:
        return self.settings_for(self._policy(row.context.get("issuer")),
                                 row.context.get("template_set"))

    def _render(self, row: ReplyRow, message_id: str, now: datetime) -> bytes:
        return render_reply(row.template, row.context, row.to_addr, self._row_settings(row),
                            message_id, now)

    def digest(self, now: datetime) -> int:
        """Queue one digest per issuer with staff; returns how many were queued."""
        since = now - timedelta(days=1)
        queued = 0
        for key, policy in self.config.issuers.items():
            if not policy.staff:
                continue
            mailboxes = {m.name for m in self.config.mailboxes if m.issuer == key}
            context = self._digest_context(policy, mailboxes, since, now)
            settings = self.settings_for(policy)
            message_id = new_message_id(self._domain(settings))
            raw = render_staff("digest", context, list(policy.staff), settings, message_id, now)
            self.outbox.queue("digest", list(policy.staff), raw, message_id,
                              f"mailbot digest {now:%Y-%m-%d}", now)
            queued += 1
        return queued

    def _digest_context(self, policy: IssuerPolicy, mailboxes: set[str], since: datetime,
                        now: datetime) -> dict[str, Any]:
        counts: dict[str, int] = {}
        needs_review, quarantined = [], []
        query = select(ledger).where(ledger.c.mailbox.in_(mailboxes),
                                     ledger.c.received_at >= since)
        with self.store.engine.connect() as conn:
            for row in conn.execute(query):
                if row.state == "quarantined":
                    quarantined.append({"id": row.id, "received_at": utc(row.received_at).isoformat(),
                                        "sender": row.sender, "subject": row.subject})
                    counts["quarantined"] = counts.get("quarantined", 0) + 1
                    continue
                record = json.loads(row.decision) if row.decision else {}
                status = record.get("status", row.state)
                counts[status] = counts.get(status, 0) + 1
                if status == "discrepancy":
                    needs_review.append({
                        "received_at": utc(row.received_at).isoformat(), "sender": row.sender,
                        "subject": row.subject, "outcomes": record.get("outcomes", []),
                        "problems": [p["code"] for p in record.get("problems", [])],
                    })
        failed = [
            {"to": r.to_addrs, "subject": r.subject, "error": r.last_error,
             "failed_at": utc(r.next_attempt_at).isoformat()}
            for r in self.outbox.failed_since(since)
        ]
        # Replies held back by the per-address rate limit need a human too.
        held = select(reply_requests).where(reply_requests.c.state == "suppressed",
                                            reply_requests.c.created_at >= since)
        with self.store.engine.connect() as conn:
            for row in conn.execute(held):
                failed.append({"to": row.to_addr, "subject": json.loads(row.context).get("subject"),
                               "error": "not sent: too many replies to this address within an hour",
                               "failed_at": utc(row.created_at).isoformat()})
        return {"issuer": policy.name, "period_start": since.isoformat(),
                "period_end": now.isoformat(), "counts": counts, "needs_review": needs_review,
                "quarantined": quarantined, "failed_replies": failed}

    def _alert(self, row: OutboxRow) -> None:
        """A reply or staff mail failed for good: tell the staff now (not for alerts)."""
        if row.kind == "alert":
            return
        if row.kind == "submission":  # the contractor side: its own staff must know
            self.submitter.alert_failed(row, self._now)
            return
        staff = sorted({a for p in self.config.issuers.values() for a in p.staff})
        if not staff:
            log.error("outbox row %d failed for good and no staff address is configured", row.id)
            return
        policy = next(iter(self.config.issuers.values()), IssuerPolicy())
        settings = self.settings_for(policy)
        context = {"issuer": policy.name, "what": "返信メールを送信できませんでした",
                   "details": [f"宛先: {row.to_addrs}", f"件名: {row.subject}",
                               f"理由: {row.last_error}"]}
        message_id = new_message_id(self._domain(settings))
        raw = render_staff("alert", context, staff, settings, message_id, self._now)
        self.outbox.queue("alert", staff, raw, message_id, "mailbot alert", self._now,
                          immediate=True, ledger_id=row.ledger_id)

"""Replies end to end: stored reply requests → rendered mail in the outbox → the relay.

`Replier` is what the scheduler calls: `queue(now)` renders every stored reply request with
its issuer's template set, sender and charset (the Message-ID is fixed here, before the first
attempt); `flush(now)` sends what is due inside the send window; `digest(now)` queues each
issuer's daily staff digest; a reply that cannot be rendered, or fails for good when sent,
raises one staff alert and is listed in the digest. An alert is rendered from our own
default templates when the issuer's set cannot render it either. The clock is always a
parameter, so tests drive it without sleeping.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from mailbot.config import Config, WindowConfig
from mailbot.ledger.ledger import utc
from mailbot.outbox.outbox import Outbox, OutboxRow, ReplyRow, SmtpSettings, StaffMail
from mailbot.outbox.window import SendWindow
from mailbot.replies.render import (
    REPO_TEMPLATES,
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
            on_render_failure=lambda row, error: self._unrenderable(row, error, now),
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
        # And replies that could not be written at all (this issuer's mailboxes only).
        unrendered = (select(reply_requests).join(ledger, ledger.c.id == reply_requests.c.ledger_id)
                      .where(reply_requests.c.state == "failed",
                             reply_requests.c.error.is_not(None),
                             reply_requests.c.failed_at >= since,
                             ledger.c.mailbox.in_(mailboxes)))
        with self.store.engine.connect() as conn:
            for row in conn.execute(held):
                failed.append({"to": row.to_addr, "subject": json.loads(row.context).get("subject"),
                               "error": "not sent: too many replies to this address within an hour",
                               "failed_at": utc(row.created_at).isoformat()})
            for row in conn.execute(unrendered):
                failed.append({"to": row.to_addr, "subject": json.loads(row.context).get("subject"),
                               "error": f"返信メールを作成できませんでした（返信依頼 {row.id}）: "
                                        f"{row.error}",
                               "failed_at": utc(row.failed_at).isoformat()})
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
        mail = self._staff_alert(None, "返信メールを送信できませんでした",
                                 [f"宛先: {row.to_addrs}", f"件名: {row.subject}",
                                  f"理由: {row.last_error}"], self._now)
        if mail is None:
            log.error("outbox row %d failed for good and no staff address is configured", row.id)
            return
        self.outbox.queue("alert", mail.to_addrs, mail.raw, mail.message_id, mail.subject,
                          self._now, immediate=True, ledger_id=row.ledger_id)

    def _unrenderable(self, row: ReplyRow, error: str, now: datetime) -> StaffMail | None:
        """The alert for a reply request that could not be rendered (queued by the outbox
        in the transaction that marks the request failed)."""
        mail = self._staff_alert(
            row.context.get("issuer"), "返信メールを作成できませんでした",
            [f"宛先: {row.to_addr}", f"件名: {row.context.get('subject') or '（件名なし）'}",
             f"理由: {error}",
             f"受注者へ返信していません。原因（テンプレートや設定）を直したあと、"
             f"管理者が mailbot outbox retry --request {row.id} で返信を作り直せます。"], now)
        if mail is None:
            log.error("reply request %d cannot be rendered and no staff address is configured",
                      row.id)
        return mail

    def _staff_alert(self, issuer_name: str | None, what: str, details: list[str],
                     now: datetime) -> StaffMail | None:
        """An alert to the issuer's staff (everybody's when it has none), rendered with its
        own template set, else with ours: an alert must get out when a template is broken."""
        policy = self._policy(issuer_name) if issuer_name else IssuerPolicy()
        staff = sorted(policy.staff) or sorted(
            {a for p in self.config.issuers.values() for a in p.staff})
        if not staff:
            return None
        if not issuer_name:
            policy = next(iter(self.config.issuers.values()), IssuerPolicy())
        settings = self.settings_for(policy)
        context = {"issuer": policy.name, "what": what, "details": details}
        for attempt in (settings, replace(settings, template_set="default",
                                          template_dirs=(REPO_TEMPLATES,))):
            try:
                message_id = new_message_id(self._domain(attempt))
                raw = render_staff("alert", context, staff, attempt, message_id, now)
            except Exception:  # noqa: BLE001 — the admin's templates: fall back to ours
                if attempt is not settings:
                    raise
                log.exception("the staff alert could not be rendered with the configured "
                              "templates; using the default ones")
                continue
            return StaffMail(staff, raw, message_id, "mailbot alert")
        return None

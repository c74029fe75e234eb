"""The contractor side's scheduled work and its mail to the contractor's own staff.

`staff_mail()` renders one mail to the staff (alerts about unroutable notices, discrepancies
and failed submissions; reminders; the digest) from the contractor's settings.
`Submitter.remind(now)` tells the staff, in one mail, about every submission an issuer has
not answered within `remind_after_days` business days (again after as many more days);
`Submitter.digest(now)` queues the contractor's daily list of open submissions. Rows and
outbox rows change in one transaction, so a crash never sends a reminder twice nor loses
one. The clock is a parameter.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from mailbot.config import Config
from mailbot.ledger.ledger import utc
from mailbot.outbox.outbox import Outbox, OutboxRow
from mailbot.outbox.window import SendWindow
from mailbot.replies.render import (
    REPO_TEMPLATES,
    ReplySettings,
    new_message_id,
    render_staff,
    template_dirs,
)
from mailbot.store.schema import submissions
from parsers.headers import clean_header_text

log = logging.getLogger("mailbot.submitting")

STATE_JA = {"queued": "送信待ち", "sent": "返信待ち", "answered": "返信あり（内容未判定）",
            "confirmed": "確認完了", "discrepancy": "相違あり", "unroutable": "提出先不明",
            "failed": "送信失敗", "cancelled": "取消"}
# How long an unroutable, failed or disputed submission stays in the digest: a re-sent notice
# becomes a new submission, so the old row is never "closed" by itself.
NEEDS_ACTION_DAYS = timedelta(days=7)
SUBJECTS = {"contractor_alert": "【電子保証提出・要対応】", "reminder": "【電子保証提出】返信待ち",
            "contractor_digest": "【電子保証提出】日次報告"}


def contractor_settings(config: Config) -> ReplySettings:
    contractor = config.contractor
    assert contractor is not None
    return ReplySettings(from_addr=contractor.from_addr,
                         from_name=contractor.from_name or contractor.name,
                         signature=contractor.signature, template_set=contractor.template_set,
                         template_dirs=template_dirs(config.template_dir))


def staff_mail(config: Config, template: str, context: dict[str, Any], now: datetime
               ) -> tuple[bytes, str, str]:
    """(bytes, Message-ID, subject for listings) of one mail to the contractor's staff."""
    contractor = config.contractor
    assert contractor is not None
    settings = contractor_settings(config)
    message_id = new_message_id(settings.from_addr.rsplit("@", 1)[-1])
    full = {"contractor": contractor.name, "excerpt": [], **context}
    try:
        raw = render_staff(template, full, list(contractor.staff), settings, message_id, now)
    except Exception:  # noqa: BLE001 — the admin's template set: staff mail must get out
        log.exception("staff mail %r could not be rendered with the configured templates; "
                      "using the default ones", template)
        settings = replace(settings, template_set="default", template_dirs=(REPO_TEMPLATES,))
        raw = render_staff(template, full, list(contractor.staff), settings, message_id, now)
    subject = clean_header_text(f"{SUBJECTS[template]} {context.get('what', '')}")
    return raw, message_id, subject


class Submitter:
    def __init__(self, config: Config, outbox: Outbox, window: SendWindow) -> None:
        self.config = config
        self.outbox = outbox
        self.window = window  # business days for reminders; staff mail goes out in it

    @property
    def active(self) -> bool:
        return self.config.contractor is not None

    def remind(self, now: datetime) -> int:
        """One reminder listing every overdue submission; returns how many it lists."""
        contractor = self.config.contractor
        if contractor is None or not self.window.is_open(now):
            return 0
        days = contractor.remind_after_days
        with self.outbox.engine.begin() as conn:
            rows = [row for row in conn.execute(
                select(submissions).where(submissions.c.state == "sent")
                .order_by(submissions.c.id))
                if self.window.business_days_between(utc(row.reminded_at or row.sent_at),
                                                     now) >= days]
            if not rows:
                return 0
            context = {"days": days, "submissions": [
                {"guarantee_number": r.guarantee_number, "issuer": self._issuer_name(r.issuer),
                 "to": r.to_addr, "subject": r.subject, "sent_at": utc(r.sent_at).isoformat()}
                for r in rows]}
            raw, message_id, subject = staff_mail(self.config, "reminder", context, now)
            self.outbox.insert(conn, "alert", list(contractor.staff), raw, message_id, subject,
                               now, immediate=True)
            for row in rows:
                conn.execute(update(submissions).where(submissions.c.id == row.id)
                             .values(reminded_at=now, reminders=row.reminders + 1))
        log.info("reminded the staff of %d unanswered submission(s)", len(rows))
        return len(rows)

    def digest(self, now: datetime) -> bool:
        """Queue the contractor's daily report; False when there is nothing to report."""
        contractor = self.config.contractor
        if contractor is None:
            return False
        since = now - timedelta(days=1)
        open_rows, answered, needs_action = [], [], []
        with self.outbox.engine.connect() as conn:
            for row in conn.execute(select(submissions).where(or_(
                    submissions.c.state.in_(("queued", "sent", "answered", "unroutable",
                                             "failed", "discrepancy")),
                    submissions.c.answered_at >= since)).order_by(submissions.c.id)):
                item = {"guarantee_number": row.guarantee_number,
                        "issuer": self._issuer_name(row.issuer), "state": row.state,
                        "state_ja": STATE_JA.get(row.state, row.state),
                        "since": utc(row.sent_at or row.created_at).isoformat(),
                        "reason": row.reason or _answer_subject(row.answer) or ""}
                if row.state in ("queued", "sent"):
                    open_rows.append(item)
                elif utc(row.answered_at or row.created_at) >= now - NEEDS_ACTION_DAYS:
                    needs_action.append(item)  # unroutable, failed, discrepancy, answered
                if row.answered_at is not None and utc(row.answered_at) >= since:
                    answered.append(item)
        if not (open_rows or answered or needs_action):
            return False
        context = {"period_start": since.isoformat(), "period_end": now.isoformat(),
                   "open": open_rows, "answered": answered, "needs_action": needs_action}
        raw, message_id, subject = staff_mail(self.config, "contractor_digest", context, now)
        self.outbox.queue("digest", list(contractor.staff), raw, message_id, subject, now)
        return True

    def alert_failed(self, row: OutboxRow, now: datetime) -> None:
        """A submission could not be delivered: the staff must send it by hand."""
        contractor = self.config.contractor
        if contractor is None:
            return
        context = {"what": "提出メールを送信できませんでした",
                   "details": [f"宛先: {row.to_addrs}", f"件名: {row.subject}",
                               f"理由: {row.last_error}"]}
        raw, message_id, subject = staff_mail(self.config, "contractor_alert", context, now)
        self.outbox.queue("alert", list(contractor.staff), raw, message_id, subject, now,
                          immediate=True, ledger_id=row.ledger_id)

    def _issuer_name(self, key: str | None) -> str:
        if key is None:
            return "（不明）"
        policy = self.config.issuers.get(key)
        return (policy.name if policy else None) or key


def _answer_subject(answer: str | None) -> str | None:
    if not answer:
        return None
    return json.loads(answer).get("subject")

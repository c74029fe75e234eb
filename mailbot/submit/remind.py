"""The contractor side's scheduled work: reminders, the daily digest, failed-mail alerts.

`Submitter.remind(now)` tells the staff, in one mail, about every submission an issuer has
not answered within `remind_after_days` business days (again after as many more days);
`Submitter.digest(now)` queues the contractor's daily list of open submissions;
`Submitter.alert_failed(row)` tells the staff a submission could not be delivered. Rows and
outbox rows change in one transaction, so a crash never sends a reminder twice nor loses
one. The clock is a parameter.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from mailbot.config import Config
from mailbot.outbox import Outbox, OutboxRow, SendWindow
from mailbot.store.schema import utc

from . import table
from .staff import STATE_JA, staff_mail

log = logging.getLogger("mailbot.submit")

# How long an unroutable, failed or disputed submission stays in the digest: a re-sent notice
# becomes a new submission, so the old row is never "closed" by itself.
NEEDS_ACTION_DAYS = timedelta(days=7)


class Submitter:
    def __init__(self, config: Config, outbox: Outbox, window: SendWindow) -> None:
        self.config = config
        self.outbox = outbox
        self.window = window  # business days for reminders; staff mail goes out in it

    def remind(self, now: datetime) -> int:
        """One reminder listing every overdue submission; returns how many it lists."""
        contractor = self.config.contractor
        if contractor is None or not self.window.is_open(now):
            return 0
        days = contractor.remind_after_days
        with self.outbox.engine.begin() as conn:
            rows = [row for row in table.awaiting_answer(conn)
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
                table.reminded(conn, row, now)
        log.info("reminded the staff of %d unanswered submission(s)", len(rows))
        return len(rows)

    def digest(self, now: datetime, run: str | None = None) -> bool:
        """Queue the contractor's daily report; False when there is nothing to report.
        `run` names the scheduled run: run again, it queues no second report."""
        contractor = self.config.contractor
        if contractor is None:
            return False
        since = now - timedelta(days=1)
        open_rows, answered, needs_action = [], [], []
        with self.outbox.engine.connect() as conn:
            for row in table.open_or_answered_since(conn, since):
                item = {"guarantee_number": row.guarantee_number,
                        "issuer": self._issuer_name(row.issuer), "state": row.state,
                        "state_ja": STATE_JA.get(row.state, row.state),
                        "since": utc(row.sent_at or row.created_at).isoformat(),
                        "reason": row.reason or _answer_subject(row.answer) or "",
                        "unverified": _unverified(row.answer)}
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
        raw, message_id, subject = staff_mail(self.config, "contractor_digest", context, now, run)
        self.outbox.queue("digest", list(contractor.staff), raw, message_id, subject, now)
        return True

    def alert_failed(self, row: OutboxRow) -> None:
        """A submission could not be delivered: the staff must send it by hand (the alert
        is dated by the flush that gave up on it)."""
        contractor = self.config.contractor
        if contractor is None:
            return
        now = row.failed_at
        assert now is not None
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


def _unverified(answer: str | None) -> int:
    """How many answers the sender could not prove to be the issuer's (kept for a person,
    the state unchanged): a submission still `sent` may have had a forged 確認しました."""
    if not answer:
        return 0
    return len(json.loads(answer).get("unauthenticated") or [])


def _answer_subject(answer: str | None) -> str | None:
    if not answer:
        return None
    subject: str | None = json.loads(answer).get("subject")
    return subject

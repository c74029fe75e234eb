"""Mail to the contractor's own staff: alerts about unroutable notices, discrepancies and
failed submissions, reminders and the digest, rendered from the contractor's settings (and
from our default templates when the contractor's set cannot render them)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from mailbot.addresses import domain_of
from mailbot.config import Config
from mailbot.replies.render import (
    REPO_TEMPLATES,
    ReplySettings,
    new_message_id,
    render_staff,
    run_message_id,
    template_dirs,
)
from parsers.headers import clean_header_text

log = logging.getLogger("mailbot.submit")



class SubmissionState(StrEnum):
    """A submission's state: queued → sent → answered | confirmed | discrepancy, or
    unroutable, failed, cancelled."""

    QUEUED = "queued"
    SENT = "sent"
    ANSWERED = "answered"
    CONFIRMED = "confirmed"
    DISCREPANCY = "discrepancy"
    UNROUTABLE = "unroutable"
    FAILED = "failed"
    CANCELLED = "cancelled"


# What the contractor's staff read for each state.
STATE_JA: dict[str, str] = {
    SubmissionState.QUEUED: "送信待ち", SubmissionState.SENT: "返信待ち",
    SubmissionState.ANSWERED: "返信あり（内容未判定）", SubmissionState.CONFIRMED: "確認完了",
    SubmissionState.DISCREPANCY: "相違あり", SubmissionState.UNROUTABLE: "提出先不明",
    SubmissionState.FAILED: "送信失敗", SubmissionState.CANCELLED: "取消"}
SUBJECTS = {"contractor_alert": "【電子保証提出・要対応】", "reminder": "【電子保証提出】返信待ち",
            "contractor_digest": "【電子保証提出】日次報告"}


def contractor_settings(config: Config) -> ReplySettings:
    contractor = config.contractor
    assert contractor is not None
    return ReplySettings(from_addr=contractor.from_addr,
                         from_name=contractor.from_name or contractor.name,
                         signature=contractor.signature, template_set=contractor.template_set,
                         template_dirs=template_dirs(config.template_dir))


def staff_mail(config: Config, template: str, context: dict[str, Any], now: datetime,
               run: str | None = None) -> tuple[bytes, str, str]:
    """(bytes, Message-ID, subject for listings) of one mail to the contractor's staff;
    `run` (a scheduled run's name) makes its Message-ID that run's (`run_message_id`)."""
    contractor = config.contractor
    assert contractor is not None
    settings = contractor_settings(config)
    domain = domain_of(settings.from_addr) or "localhost"
    message_id = (new_message_id(domain) if run is None
                  else run_message_id(domain, run, template))
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

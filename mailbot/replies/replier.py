"""Replies end to end: stored reply requests → rendered mail in the outbox, and the staff
mail of the issuer side.

`Replier.queue(now)` renders every stored reply request with its issuer's template set,
sender and charset (the Message-ID is fixed here, before the first attempt);
`digest(now)` queues each issuer's daily staff digest; a reply that cannot be rendered, or
fails for good when sent (`alert_failed`), raises one staff alert and is listed in the
digest. An alert is rendered from our own default templates when the issuer's set cannot
render it either. The clock is always a parameter, so tests drive it without sleeping.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from mailbot.addresses import domain_of
from mailbot.config import Config
from mailbot.ledger import ReplyRow, entry_by_id
from mailbot.outbox import Outbox, OutboxRow, StaffMail
from mailbot.verify.policy import IssuerPolicy

from .digest import digest_context, routed_context
from .render import (
    REPO_TEMPLATES,
    ReplySettings,
    new_message_id,
    render_reply,
    render_staff,
    run_message_id,
    template_dirs,
)

log = logging.getLogger("mailbot.replies")


class Replier:
    def __init__(self, config: Config, outbox: Outbox) -> None:
        self.config = config
        self.outbox = outbox

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
        return domain_of(settings.from_addr) or "localhost"

    # -- the scheduled jobs ---------------------------------------------------------------
    def queue(self, now: datetime) -> int:
        immediate = set(self.config.send_window.immediate)
        return self.outbox.queue_replies(
            render=lambda row, message_id: self._render(row, message_id, now),
            message_id_for=lambda row: new_message_id(self._domain(self._row_settings(row))),
            now=now,
            immediate=lambda row: row.template in immediate,
            on_render_failure=lambda row, error: self._unrenderable(row, error, now),
        )

    def _row_settings(self, row: ReplyRow) -> ReplySettings:
        return self.settings_for(self._policy(_issuer_id(row.context)),
                                 row.context.get("template_set"))

    def _render(self, row: ReplyRow, message_id: str, now: datetime) -> bytes:
        return render_reply(row.template, row.context, row.to_addr, self._row_settings(row),
                            message_id, now)

    def digest(self, now: datetime, run: str | None = None) -> int:
        """Queue one digest per issuer with staff, and one per address a route names in
        `notify` that the day's messages were routed to; returns how many were queued.
        `run` names the scheduled run ("digest d2026-12-03"): run again (taken over by
        another node), it queues no digest twice (`run_message_id`)."""
        since = now - timedelta(days=1)
        queued = 0
        for key, policy in self.config.issuers.items():
            if not policy.staff:
                continue
            mailboxes = {m.name for m in self.config.mailboxes if m.issuer == key}
            context = digest_context(self.outbox, policy.name, mailboxes, since, now,
                                     self.config.auth_requirement(key, "issuer"))
            self._queue_digest(policy, list(policy.staff), context, now, run)
            queued += 1
        mailboxes = {m.name for m in self.config.mailboxes}
        for address in sorted({a for route in self.config.routes for a in route.notify}):
            routed = routed_context(self.outbox, address, mailboxes, since, now)
            if routed is not None:
                issuer, context = routed
                self._queue_digest(self._policy(issuer), [address], context, now, run)
                queued += 1
        return queued

    def _queue_digest(self, policy: IssuerPolicy, to_addrs: list[str],
                      context: dict[str, Any], now: datetime, run: str | None) -> None:
        settings = self.settings_for(policy)
        domain = self._domain(settings)
        message_id = (new_message_id(domain) if run is None else
                      run_message_id(domain, run, f"{policy.name}|{','.join(sorted(to_addrs))}"))
        raw = render_staff("digest", context, to_addrs, settings, message_id, now)
        self.outbox.queue("digest", to_addrs, raw, message_id,
                          f"mailbot digest {now:%Y-%m-%d}", now)

    # -- alerts -----------------------------------------------------------------------------
    def alert_failed(self, row: OutboxRow) -> None:
        """A reply or staff mail failed for good: tell the staff now (dated by the flush
        that gave up on it)."""
        now = row.failed_at
        assert now is not None
        mail = self.staff_alert(self._issuer_of(row.ledger_id), "返信メールを送信できませんでした",
                                 [f"宛先: {row.to_addrs}", f"件名: {row.subject}",
                                  f"理由: {row.last_error}"], now)
        if mail is None:
            log.error("outbox row %d failed for good and no staff address is configured", row.id,
                      extra={"outbox_id": row.id, "ledger_id": row.ledger_id})
            return
        self.outbox.queue("alert", mail.to_addrs, mail.raw, mail.message_id, mail.subject,
                          now, immediate=True, ledger_id=row.ledger_id)

    def _issuer_of(self, ledger_id: int | None) -> str | None:
        """The issuer (its ID) of the mailbox the mail behind an outbox row came in by;
        None for mail of no received message (digests) or a mailbox no longer configured."""
        if ledger_id is None:
            return None
        with self.outbox.engine.connect() as conn:
            entry = entry_by_id(conn, ledger_id)
        mailbox = next((m for m in self.config.mailboxes
                        if entry is not None and m.name == entry.mailbox), None)
        if mailbox is None or mailbox.issuer is None:
            return None
        return mailbox.issuer  # its ID: two issuers may share a name

    def _unrenderable(self, row: ReplyRow, error: str, now: datetime) -> StaffMail | None:
        """The alert for a reply request that could not be rendered (queued by the outbox
        in the transaction that marks the request failed)."""
        mail = self.staff_alert(
            _issuer_id(row.context), "返信メールを作成できませんでした",
            [f"宛先: {row.to_addr}", f"件名: {row.context.get('subject') or '（件名なし）'}",
             f"理由: {error}",
             f"受注者へ返信していません。原因（テンプレートや設定）を直したあと、"
             f"管理者が mailbot outbox retry --request {row.id} で返信を作り直せます。"], now)
        if mail is None:
            log.error("reply request %d cannot be rendered and no staff address is configured",
                      row.id, extra={"reply_request_id": row.id, "ledger_id": row.ledger_id})
        return mail

    def staff_alert(self, issuer_name: str | None, what: str, details: list[str],
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


def _issuer_id(context: dict[str, Any]) -> str | None:
    """The issuer of a reply request: its ID (requests stored before the ID was kept in the
    context have only the issuer's name)."""
    return context.get("issuer_id") or context.get("issuer")

"""Putting mail in the outbox: stored reply requests rendered into rows, digests and alerts.

`queue_replies()` turns stored reply requests into outbox rows: for each it chooses the
Message-ID first, renders the message with it and inserts the row while marking the request
`queued`, all in one transaction (a crash cannot queue a reply twice: `reply_request_id` is
unique). More than `rate_limit` replies to one address within its span suppress the request
instead. A request that cannot be rendered ends `failed` with its error, and the staff alert
about it is queued in the same transaction (`retry_reply` puts it back once fixed).
`queue()` adds digests and alerts; `insert()` adds a row inside the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mailbot.ledger import requests
from mailbot.ledger.requests import ReplyRow
from mailbot.store.schema import outbox
from parsers.headers import clean_header_text

from .core import OutboxCore
from .rows import StaffMail, aware_utc, checked_recipients, checked_subject

log = logging.getLogger("mailbot.outbox")

RenderFailure = Callable[[ReplyRow, str], StaffMail | None]


class Queueing(OutboxCore):
    def queue_replies(
        self,
        render: Callable[[ReplyRow, str], bytes],
        message_id_for: Callable[[ReplyRow], str],
        now: datetime,
        immediate: Callable[[ReplyRow], bool] = lambda r: False,
        rate_limit: tuple[int, timedelta] = (10, timedelta(hours=1)),
        on_render_failure: RenderFailure | None = None,
    ) -> int:
        """Queue every stored reply request; returns how many became outbox rows.

        Rendering is deterministic (the same request, templates and settings give the same
        bytes), so a request whose rendering fails — a template that raises, an address no
        mail can carry — is not tried again every tick: it ends `failed` at once with the
        error, and the staff mail `on_render_failure` returns for it is queued in the same
        transaction (exactly one alert, even across a crash). Database errors are not the
        request's fault: it stays `stored` for the next run.
        """
        now = aware_utc(now)
        with self.engine.connect() as conn:
            ids = requests.stored_ids(conn)
        queued = 0
        for request_id in ids:
            try:
                queued += self._queue_reply(request_id, render, message_id_for, now, immediate,
                                            rate_limit, on_render_failure)
            except IntegrityError:
                log.info("reply request %d was queued by another worker", request_id,
                         extra={"reply_request_id": request_id})
            except Exception:
                log.exception("reply request %d could not be queued; it stays stored",
                              request_id, extra={"reply_request_id": request_id})
        return queued

    def _queue_reply(
        self,
        request_id: int,
        render: Callable[[ReplyRow, str], bytes],
        message_id_for: Callable[[ReplyRow], str],
        now: datetime,
        immediate: Callable[[ReplyRow], bool],
        rate_limit: tuple[int, timedelta],
        on_render_failure: RenderFailure | None = None,
    ) -> int:
        limit, span = rate_limit
        with self.engine.begin() as conn:
            # Take the request first: a concurrent worker waits here, then finds it gone.
            reply = requests.take(conn, request_id)
            if reply is None:
                return 0
            recent = conn.execute(
                select(func.count()).where(
                    outbox.c.kind == "reply",
                    func.lower(outbox.c.to_addrs) == reply.to_addr.strip().lower(),
                    outbox.c.created_at > now - span,
                    outbox.c.state != "cancelled",
                )
            ).scalar_one()
            if recent >= limit:
                requests.suppress(conn, request_id)
                log.warning("reply request %d to %s suppressed: %d replies to that address "
                            "within %s", request_id, reply.to_addr, recent, span,
                            extra={"reply_request_id": request_id,
                                   "ledger_id": reply.ledger_id})
                return 0
            try:
                message_id = message_id_for(reply)  # chosen before anything is rendered or sent
                raw = render(reply, message_id)
                subject = checked_subject(raw, message_id)
                send_now = bool(immediate(reply))
            except SQLAlchemyError:
                raise
            except Exception as exc:  # noqa: BLE001 — deterministic: it would fail again
                self._render_failed(conn, reply, exc, now, on_render_failure)
                return 0
            conn.execute(insert(outbox).values(
                kind="reply", reply_request_id=reply.id, ledger_id=reply.ledger_id,
                message_id=message_id, to_addrs=reply.to_addr.strip(), subject=subject, raw=raw,
                state="queued", immediate=send_now, attempts=0, next_attempt_at=now,
                deadline=self._deadline(now, send_now, None), created_at=now,
            ))
        log.info("reply request %d queued as %s", request_id, message_id,
                 extra={"reply_request_id": request_id, "message_id": message_id})
        return 1

    def _render_failed(self, conn: Connection, reply: ReplyRow, exc: Exception, now: datetime,
                       on_render_failure: RenderFailure | None) -> None:
        """`reply` ends `failed` with the error; its staff alert joins the transaction."""
        error = clean_header_text(f"{type(exc).__name__}: {exc}")[:2000]  # no NUL for PG
        requests.unrenderable(conn, reply.id, error, now)
        log.error("reply request %d to %s cannot be rendered; it is failed: %s", reply.id,
                  reply.to_addr, error, exc_info=exc,
                  extra={"reply_request_id": reply.id, "ledger_id": reply.ledger_id})
        if on_render_failure is None:
            return
        failed = replace(reply, state="failed", error=error, failed_at=now)
        try:
            alert = on_render_failure(failed, error)
            if alert is not None:
                checked_recipients("alert", alert.to_addrs)
                checked_subject(alert.raw, alert.message_id)
        except Exception:  # noqa: BLE001 — the request is failed all the same (status, digest)
            log.exception("reply request %d: the staff alert could not be written", reply.id)
            return
        if alert is not None:
            self.insert(conn, "alert", alert.to_addrs, alert.raw, alert.message_id,
                        alert.subject, now, immediate=True, ledger_id=reply.ledger_id)

    def queue(self, kind: str, to_addrs: list[str], raw: bytes, message_id: str, subject: str,
              now: datetime, immediate: bool = False, ledger_id: int | None = None) -> int:
        """Queue a digest or an alert; returns its row id. Queueing the same Message-ID again
        returns the existing row instead of adding a second one."""
        addresses = checked_recipients(kind, to_addrs)
        existing = self._id_of(message_id)
        if existing is not None:
            return existing
        try:
            with self.engine.begin() as conn:
                return self.insert(conn, kind, addresses, raw, message_id, subject, now,
                                   immediate=immediate, ledger_id=ledger_id)
        except IntegrityError:
            found = self._id_of(message_id)
            if found is None:
                raise
            return found

    def insert(self, conn: Connection, kind: str, to_addrs: list[str], raw: bytes,
               message_id: str, subject: str, now: datetime, immediate: bool = False,
               ledger_id: int | None = None, window: str | None = None) -> int:
        """Add a row inside the caller's transaction (so a decision and the mail it causes
        commit together); returns its id. A Message-ID already queued raises IntegrityError."""
        addresses = checked_recipients(kind, to_addrs)
        if window is not None and window not in self.windows:
            raise ValueError(f"no send window named {window!r}")
        checked_subject(raw, message_id)
        now = aware_utc(now)
        key = conn.execute(insert(outbox).values(
            kind=kind, ledger_id=ledger_id, message_id=message_id,
            to_addrs=", ".join(addresses), subject=subject, raw=raw, state="queued",
            immediate=immediate, attempts=0, next_attempt_at=now,
            deadline=self._deadline(now, immediate, window), created_at=now, window=window,
        )).inserted_primary_key
        assert key is not None
        return int(key[0])

    def cancel_superseded(self, conn: Connection, message_id: str) -> None:
        """A submission's mail its notice's new submission replaces must never go out now
        (a retry of a failed row, say), in the caller's transaction. No listener hears of
        it: the submission it carried already stands for the new mail."""
        conn.execute(update(outbox).where(
            outbox.c.kind == "submission", outbox.c.message_id == message_id,
            outbox.c.state.in_(("queued", "failed"))).values(state="cancelled"))

    def _id_of(self, message_id: str) -> int | None:
        with self.engine.connect() as conn:
            found: int | None = conn.execute(
                select(outbox.c.id).where(outbox.c.message_id == message_id)).scalar()
            return found

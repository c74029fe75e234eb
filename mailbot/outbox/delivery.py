"""Sending what the outbox holds: `flush(now)` sends what is due over one SMTP connection,
inside the send window unless a row is `immediate`.

250 marks the row `sent` in the step right after the server's answer; 4xx and lost
connections retry with backoff until the row's deadline, then fail; 5xx fails at once.
Every state change is told to the listeners in its transaction; every permanent failure
then calls `on_permanent_failure`, which is where alerts come from (docs/reliability.md).
`recover()` puts rows a killed process was sending back in line. The clock is always a
parameter: nothing here reads it or sleeps.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from mailbot.store.schema import outbox

from .core import OutboxCore
from .rows import FlushReport, OutboxRow, aware_utc
from .smtp import connect, reply_text, send, smtp_error

log = logging.getLogger("mailbot.outbox")


class Delivery(OutboxCore):
    def recover(self, now: datetime) -> int:
        """Rows a killed run of this node was sending: due again now, with the same
        Message-ID. With a cluster `holder` set, only rows of earlier runs of the same node
        (or claimed without a holder); another node's rows come back by `reclaim_dead`.

        Whether the relay got such a message is unknown; the receiving side recognises a
        second copy by its Message-ID and body (see the ledger's body hash)."""
        where = [outbox.c.state == "queued", outbox.c.claimed_at.is_not(None)]
        if self.holder is not None:
            node = self.holder.split("#", 1)[0]
            where.append(or_(outbox.c.claimed_by.is_(None),
                             func.substr(outbox.c.claimed_by, 1, len(node) + 1) == node + "#"))
        return self._interrupted(where, now)

    def reclaim_dead(self, live: set[str], now: datetime) -> int:
        """Rows claimed by a node whose node lease has run out (`live`: the holders of
        unexpired node leases): due again now, with the same Message-ID."""
        where = [outbox.c.state == "queued", outbox.c.claimed_at.is_not(None),
                 outbox.c.claimed_by.is_not(None)]
        if live:
            where.append(outbox.c.claimed_by.not_in(sorted(live)))
        return self._interrupted(where, now)

    def _interrupted(self, where: list[Any], now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                update(outbox)
                .where(*where)
                .values(next_attempt_at=aware_utc(now), claimed_at=None, claimed_by=None,
                        attempts=outbox.c.attempts + 1,
                        last_error="interrupted while sending (outcome unknown); "
                                   "sent again with the same Message-ID")
            ).rowcount

    def flush(self, now: datetime) -> FlushReport:
        """Send every due row (only immediate ones while the window is closed)."""
        now = aware_utc(now)
        report = FlushReport()
        with self.engine.connect() as conn:
            due = conn.execute(
                select(outbox.c.id, outbox.c.immediate, outbox.c.window)
                .where(outbox.c.state == "queued", outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.next_attempt_at, outbox.c.id)
            ).all()
        ids = [row.id for row in due if row.immediate or self._window(row.window).is_open(now)]
        report.waiting = len(due) - len(ids)
        if not ids:
            return report
        try:
            smtp = connect(self.smtp)
        except (smtplib.SMTPException, OSError) as exc:
            _permanent, error = smtp_error(exc)
            report.error = f"{self.smtp.host}:{self.smtp.port}: {error}"
            log.warning("outbox: cannot connect to the relay: %s", report.error)
            for row_id in ids:  # every due row counts an attempt, so the deadline applies
                if self._claim(row_id, now):
                    self._temporary(self.get(row_id), now, report.error, report)
            return report
        try:
            for position, row_id in enumerate(ids):
                if not self._claim(row_id, now):
                    continue  # cancelled, or taken by another flush
                row = self.get(row_id, with_raw=True)
                assert row is not None and row.raw is not None
                try:
                    envelope = self.envelope_sender(row) if self.envelope_sender else None
                    refused = send(smtp, row, envelope)
                except (smtplib.SMTPException, OSError, ValueError) as exc:
                    permanent, error = (True, str(exc)) if isinstance(exc, ValueError) \
                        else smtp_error(exc)
                    if permanent:
                        self._permanent(row, now, error, report)
                    else:
                        self._temporary(row, now, error, report)
                    if smtp.sock is None:  # smtplib closes it on 421, timeouts, resets
                        report.waiting += len(ids) - position - 1
                        break  # the connection is gone: the rest waits for the next flush
                    try:  # end the failed transaction, or the next MAIL FROM is refused
                        smtp.rset()
                    except (smtplib.SMTPException, OSError):
                        report.waiting += len(ids) - position - 1
                        break
                    continue
                self._sent(row, now, refused, report)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
        return report

    def _claim(self, row_id: int, now: datetime) -> bool:
        """Take a due row for this flush: it is not due again until the lease ends."""
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.state == "queued",
                       outbox.c.next_attempt_at <= now)
                .values(next_attempt_at=now + self.lease, claimed_at=now,
                        claimed_by=self.holder)
            ).rowcount)

    def _sent(self, row: OutboxRow, now: datetime, refused: dict[str, tuple[int, bytes]],
              report: FlushReport) -> None:
        note = None
        if refused:  # some recipients got it: sending again would duplicate theirs
            note = "sent, but refused for " + "; ".join(
                f"{addr}: {code} {reply_text(msg)}" for addr, (code, msg) in refused.items())
            log.warning("outbox row %d: %s", row.id, note, extra=_fields(row, "sent"))
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox).where(outbox.c.id == row.id).values(
                    state="sent", sent_at=now, attempts=row.attempts + 1, last_error=note,
                    claimed_at=None))
            self._notify(conn, row, "sent", now)
        report.sent.append(row.id)
        log.info("outbox row %d (%s) sent to %s", row.id, row.message_id, row.to_addrs,
                 extra=_fields(row, "sent"))

    def _temporary(self, row: OutboxRow | None, now: datetime, error: str,
                   report: FlushReport) -> None:
        if row is None:
            return
        attempts = row.attempts + 1
        retry_at = now + timedelta(seconds=self.backoff[min(attempts - 1, len(self.backoff) - 1)])
        if retry_at > row.deadline:
            self._permanent(row, now, f"{error} (gave up: deadline {row.deadline:%Y-%m-%d %H:%M}"
                            " UTC passed)", report)
            return
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbox).where(outbox.c.id == row.id, outbox.c.state == "queued").values(
                    attempts=attempts, next_attempt_at=retry_at, last_error=error[:2000],
                    claimed_at=None)
            ).rowcount
        if done:
            report.deferred.append(row.id)
            log.warning("outbox row %d: %s; next attempt %s", row.id, error, retry_at,
                        extra={**_fields(row, "queued"), "attempt": attempts})

    def _permanent(self, row: OutboxRow, now: datetime, error: str, report: FlushReport) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbox).where(outbox.c.id == row.id, outbox.c.state == "queued").values(
                    state="failed", attempts=row.attempts + 1, next_attempt_at=now,
                    last_error=error[:2000], claimed_at=None)
            ).rowcount
            if done:
                self._notify(conn, row, "failed", now, error[:2000])
        if not done:
            return
        report.failed.append(row.id)
        log.error("outbox row %d (%s to %s) failed: %s", row.id, row.message_id, row.to_addrs,
                  error, extra=_fields(row, "failed"))
        if self.on_permanent_failure is not None:
            failed = self.get(row.id)
            assert failed is not None
            try:
                self.on_permanent_failure(failed)
            except Exception:
                log.exception("outbox row %d: on_permanent_failure raised", row.id,
                              extra=_fields(row, "failed"))


def _fields(row: OutboxRow, state: str) -> dict[str, object]:
    """The structured fields of an outbox event's log line (docs/logging.md)."""
    return {"outbox_id": row.id, "kind": row.kind, "ledger_id": row.ledger_id,
            "message_id": row.message_id, "state": state}

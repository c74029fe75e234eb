"""The outbox: every message mailbot sends, durable from the moment it is rendered.

`queue_replies()` turns stored reply requests into outbox rows: for each it chooses the
Message-ID first, renders the message with it and inserts the row while marking the request
`queued`, all in one transaction (a crash cannot queue a reply twice: `reply_request_id` is
unique). More than `rate_limit` replies to one address within its span suppress the request
instead. A request that cannot be rendered ends `failed` with its error, and the staff alert
about it is queued in the same transaction (`retry_reply` puts it back once fixed). `queue()` adds digests and alerts. `flush(now)` sends what is due over one SMTP
connection, inside the send window unless a row is `immediate`: 250 marks the row `sent` in
the step right after the server's answer; 4xx and lost connections retry with backoff until
the row's deadline, then fail; 5xx fails at once. Every permanent failure calls
`on_permanent_failure`, which is where alerts come from (DESIGN.md §6).

The clock is always a parameter: nothing here reads it or sleeps. Datetimes are stored in
UTC; a failed row's `next_attempt_at` is the moment it failed.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mailbot.store.schema import ledger, outbox, reply_requests, submissions
from parsers.headers import clean_header_text

from .window import SendWindow

log = logging.getLogger("mailbot.outbox")

KINDS = ("reply", "digest", "alert", "submission")
STATES = ("queued", "sent", "failed", "cancelled")
# A submission follows its outbox row into a state only from these (once the issuer has
# answered, or the notice was submitted again, the row's fate no longer decides it).
_SUBMISSION_FROM = {"sent": ("queued",), "failed": ("queued",), "queued": ("failed",),
                    "cancelled": ("queued", "failed")}
TLS_MODES = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    tls: str = "none"  # "ssl" | "starttls" | "none"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30
    helo: str | None = None  # name for EHLO/HELO; the local host name when None

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise ValueError(f"smtp tls must be one of {', '.join(TLS_MODES)}, not {self.tls!r}")


@dataclass(frozen=True)
class ReplyRow:
    """One `reply_requests` row, its context decoded."""

    id: int
    ledger_id: int
    to_addr: str
    template: str
    context: dict[str, Any]
    state: str
    created_at: datetime
    error: str | None = None  # why it could not be rendered (state `failed`)
    failed_at: datetime | None = None


@dataclass(frozen=True)
class StaffMail:
    """A rendered mail for the staff, queued in the transaction of what caused it."""

    to_addrs: list[str]
    raw: bytes
    message_id: str
    subject: str


@dataclass(frozen=True)
class OutboxRow:
    """One `outbox` row; `raw` only when asked for."""

    id: int
    kind: str
    reply_request_id: int | None
    ledger_id: int | None
    message_id: str
    to_addrs: str
    subject: str | None
    state: str
    immediate: bool
    attempts: int
    next_attempt_at: datetime
    deadline: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    window: str | None = None  # a named send window (an issuer's), None: the default one
    claimed_at: datetime | None = None  # set while a flush is sending it
    raw: bytes | None = None

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in self.to_addrs.split(",") if a.strip()]


@dataclass
class FlushReport:
    sent: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)  # temporary failure, will retry
    failed: list[int] = field(default_factory=list)  # permanent, or past the deadline
    waiting: int = 0  # due but not tried: window closed, or the connection was lost
    error: str | None = None  # the connection could not be opened


_ROW_COLUMNS = [outbox.c[name] for name in OutboxRow.__dataclass_fields__ if name != "raw"]
_DATETIMES = ("next_attempt_at", "deadline", "created_at", "sent_at", "claimed_at")


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"outbox: {dt!r} has no time zone")
    return dt.astimezone(UTC)


def _read_time(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (we stored UTC), PostgreSQL aware ones."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _outbox_row(mapping: Any) -> OutboxRow:
    values = dict(mapping)
    for name in _DATETIMES:
        values[name] = _read_time(values[name])
    values["immediate"] = bool(values["immediate"])
    if values.get("raw") is not None:
        values["raw"] = bytes(values["raw"])
    return OutboxRow(**values)


def _reply_row(mapping: Any) -> ReplyRow:
    values = dict(mapping)
    values["context"] = json.loads(values["context"])
    values["created_at"] = _read_time(values["created_at"])
    values["failed_at"] = _read_time(values.get("failed_at"))
    return ReplyRow(**values)


def message_headers(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """(envelope sender from `From:`, Message-ID, decoded Subject) of a rendered message."""
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    addresses = [addr for _name, addr in getaddresses(headers.get_all("From", [])) if addr]
    message_id = headers.get("Message-ID")
    subject = headers.get("Subject")
    return (
        addresses[0] if addresses else None,
        str(message_id).strip() if message_id is not None else None,
        str(subject) if subject is not None else None,
    )


def _checked_subject(raw: bytes, message_id: str) -> str | None:
    """The subject of `raw`, after checking it carries `message_id` and a From address."""
    sender, found_id, subject = message_headers(raw)
    if sender is None:
        raise ValueError("the rendered message has no From address (the envelope sender)")
    if found_id != message_id.strip():
        raise ValueError(
            f"the rendered message's Message-ID {found_id!r} is not the chosen {message_id!r}")
    return subject


def _checked_recipients(kind: str, to_addrs: list[str]) -> list[str]:
    """The bare addresses of a row of `kind`, or ValueError."""
    if kind not in KINDS:
        raise ValueError(f"outbox kind must be one of {', '.join(KINDS)}, not {kind!r}")
    addresses = [a.strip() for a in to_addrs if a.strip()]
    if not addresses:
        raise ValueError("an outbox message needs at least one recipient")
    if any("," in a for a in addresses):
        raise ValueError(f"recipients must be bare addresses: {addresses!r}")
    return addresses


def _smtp_error(exc: BaseException) -> tuple[bool, str]:
    """(permanent?, one line for last_error) of a failed send."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        text = "; ".join(f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in refused.items())
        permanent = bool(refused) and all(code >= 500 for code, _msg in refused.values())
        return permanent, f"recipients refused: {text}"
    if isinstance(exc, smtplib.SMTPResponseException):  # data, sender, helo, auth errors
        return exc.smtp_code >= 500, f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    return False, f"{type(exc).__name__}: {exc}"  # disconnected, timeout, refused connection


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Outbox:
    def __init__(
        self,
        engine: Engine,
        smtp: SmtpSettings,
        window: SendWindow,
        deadline: timedelta = timedelta(days=2),
        backoff: tuple[float, ...] = (60, 300, 900, 3600),
        on_permanent_failure: Callable[[OutboxRow], None] | None = None,
        windows: dict[str, SendWindow] | None = None,
    ) -> None:
        if not backoff:
            raise ValueError("outbox backoff needs at least one delay")
        self.engine = engine
        self.smtp = smtp
        self.window = window
        self.windows = dict(windows or {})  # named windows: one per issuer that has its own
        self.deadline = deadline
        self.backoff = backoff
        self.on_permanent_failure = on_permanent_failure
        # A row being sent is not due again before this (a second flush must not send it too;
        # after a crash in mid-send it comes due again).
        self.lease = timedelta(seconds=max(600.0, 4 * smtp.timeout))

    # -- queueing ---------------------------------------------------------------------
    def queue_replies(
        self,
        render: Callable[[ReplyRow, str], bytes],
        message_id_for: Callable[[ReplyRow], str],
        now: datetime,
        immediate: Callable[[ReplyRow], bool] = lambda r: False,
        rate_limit: tuple[int, timedelta] = (10, timedelta(hours=1)),
        on_render_failure: Callable[[ReplyRow, str], StaffMail | None] | None = None,
    ) -> int:
        """Queue every stored reply request; returns how many became outbox rows.

        Rendering is deterministic (the same request, templates and settings give the same
        bytes), so a request whose rendering fails — a template that raises, an address no
        mail can carry — is not tried again every tick: it ends `failed` at once with the
        error, and the staff mail `on_render_failure` returns for it is queued in the same
        transaction (exactly one alert, even across a crash). Database errors are not the
        request's fault: it stays `stored` for the next run.
        """
        now = _utc(now)
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(reply_requests.c.id)
                .where(reply_requests.c.state == "stored")
                .order_by(reply_requests.c.id)
            ).scalars().all()
        queued = 0
        for request_id in ids:
            try:
                queued += self._queue_reply(request_id, render, message_id_for, now, immediate,
                                            rate_limit, on_render_failure)
            except IntegrityError:
                log.info("reply request %d was queued by another worker", request_id)
            except Exception:
                log.exception("reply request %d could not be queued; it stays stored",
                              request_id)
        return queued

    def _queue_reply(
        self,
        request_id: int,
        render: Callable[[ReplyRow, str], bytes],
        message_id_for: Callable[[ReplyRow], str],
        now: datetime,
        immediate: Callable[[ReplyRow], bool],
        rate_limit: tuple[int, timedelta],
        on_render_failure: Callable[[ReplyRow, str], StaffMail | None] | None = None,
    ) -> int:
        limit, span = rate_limit
        with self.engine.begin() as conn:
            # Take the request first: a concurrent worker waits here, then finds it gone.
            taken = conn.execute(
                update(reply_requests)
                .where(reply_requests.c.id == request_id, reply_requests.c.state == "stored")
                .values(state="queued")
            ).rowcount
            if not taken:
                return 0
            reply = _reply_row(conn.execute(
                select(reply_requests).where(reply_requests.c.id == request_id)).one()._mapping)
            recent = conn.execute(
                select(func.count()).where(
                    outbox.c.kind == "reply",
                    func.lower(outbox.c.to_addrs) == reply.to_addr.strip().lower(),
                    outbox.c.created_at > now - span,
                    outbox.c.state != "cancelled",
                )
            ).scalar_one()
            if recent >= limit:
                conn.execute(
                    update(reply_requests)
                    .where(reply_requests.c.id == request_id)
                    .values(state="suppressed")
                )
                log.warning("reply request %d to %s suppressed: %d replies to that address "
                            "within %s", request_id, reply.to_addr, recent, span)
                return 0
            try:
                message_id = message_id_for(reply)  # chosen before anything is rendered or sent
                raw = render(reply, message_id)
                subject = _checked_subject(raw, message_id)
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
        log.info("reply request %d queued as %s", request_id, message_id)
        return 1

    def _render_failed(self, conn: Connection, reply: ReplyRow, exc: Exception, now: datetime,
                       on_render_failure: Callable[[ReplyRow, str], StaffMail | None] | None
                       ) -> None:
        """`reply` ends `failed` with the error; its staff alert joins the transaction."""
        error = clean_header_text(f"{type(exc).__name__}: {exc}")[:2000]  # no NUL for PG
        conn.execute(update(reply_requests).where(reply_requests.c.id == reply.id)
                     .values(state="failed", error=error, failed_at=now))
        log.error("reply request %d to %s cannot be rendered; it is failed: %s", reply.id,
                  reply.to_addr, error, exc_info=exc)
        if on_render_failure is None:
            return
        failed = replace(reply, state="failed", error=error, failed_at=now)
        try:
            alert = on_render_failure(failed, error)
            if alert is not None:
                _checked_recipients("alert", alert.to_addrs)
                _checked_subject(alert.raw, alert.message_id)
        except Exception:  # noqa: BLE001 — the request is failed all the same (status, digest)
            log.exception("reply request %d: the staff alert could not be written", reply.id)
            return
        if alert is not None:
            self.insert(conn, "alert", alert.to_addrs, alert.raw, alert.message_id,
                        alert.subject, now, immediate=True, ledger_id=reply.ledger_id)

    def queue(
        self,
        kind: str,
        to_addrs: list[str],
        raw: bytes,
        message_id: str,
        subject: str,
        now: datetime,
        immediate: bool = False,
        ledger_id: int | None = None,
    ) -> int:
        """Queue a digest or an alert; returns its row id. Queueing the same Message-ID again
        returns the existing row instead of adding a second one."""
        addresses = _checked_recipients(kind, to_addrs)
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

    def insert(
        self,
        conn: Connection,
        kind: str,
        to_addrs: list[str],
        raw: bytes,
        message_id: str,
        subject: str,
        now: datetime,
        immediate: bool = False,
        ledger_id: int | None = None,
        window: str | None = None,
    ) -> int:
        """Add a row inside the caller's transaction (so a decision and the mail it causes
        commit together); returns its id. A Message-ID already queued raises IntegrityError."""
        addresses = _checked_recipients(kind, to_addrs)
        if window is not None and window not in self.windows:
            raise ValueError(f"no send window named {window!r}")
        _checked_subject(raw, message_id)
        now = _utc(now)
        row_id = conn.execute(insert(outbox).values(
            kind=kind, ledger_id=ledger_id, message_id=message_id,
            to_addrs=", ".join(addresses), subject=subject, raw=raw, state="queued",
            immediate=immediate, attempts=0, next_attempt_at=now,
            deadline=self._deadline(now, immediate, window), created_at=now, window=window,
        )).inserted_primary_key[0]
        return int(row_id)

    def _id_of(self, message_id: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(outbox.c.id).where(outbox.c.message_id == message_id)).scalar()

    def _deadline(self, now: datetime, immediate: bool, window: str | None) -> datetime:
        """Counted from the first moment the row may go out, so a reply queued before the
        year-end closure is not given up before its first attempt."""
        return (now if immediate else _utc(self._window(window).next_open(now))) + self.deadline

    def _window(self, name: str | None) -> SendWindow:
        return self.windows.get(name, self.window) if name else self.window

    def recover(self, now: datetime) -> int:
        """Rows a killed process was sending: due again now, with the same Message-ID.

        Call it only when no other flush can be running (the daemon holds the spool lock).
        Whether the relay got such a message is unknown; the receiving side recognises a
        second copy by its Message-ID and body (see the ledger's body hash)."""
        with self.engine.begin() as conn:
            return conn.execute(
                update(outbox)
                .where(outbox.c.state == "queued", outbox.c.claimed_at.is_not(None))
                .values(next_attempt_at=_utc(now), claimed_at=None,
                        attempts=outbox.c.attempts + 1,
                        last_error="interrupted while sending (outcome unknown); "
                                   "sent again with the same Message-ID")
            ).rowcount

    # -- sending ----------------------------------------------------------------------
    def flush(self, now: datetime) -> FlushReport:
        """Send every due row (only immediate ones while the window is closed)."""
        now = _utc(now)
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
            smtp = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            _permanent, error = _smtp_error(exc)
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
                    refused = self._send(smtp, row)
                except (smtplib.SMTPException, OSError, ValueError) as exc:
                    permanent, error = (True, str(exc)) if isinstance(exc, ValueError) \
                        else _smtp_error(exc)
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

    def _connect(self) -> smtplib.SMTP:
        s = self.smtp
        if s.tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, local_hostname=s.helo, timeout=s.timeout,
                context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, local_hostname=s.helo, timeout=s.timeout)
        try:
            smtp.ehlo_or_helo_if_needed()
            if s.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, smtp: smtplib.SMTP, row: OutboxRow) -> dict[str, tuple[int, bytes]]:
        assert row.raw is not None
        sender, _message_id, _subject = message_headers(row.raw)
        if sender is None:
            raise ValueError("the message has no From address (the envelope sender)")
        options = []
        if not row.raw.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        return smtp.sendmail(sender, row.recipients, row.raw, mail_options=options)

    def _claim(self, row_id: int, now: datetime) -> bool:
        """Take a due row for this flush: it is not due again until the lease ends."""
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.state == "queued",
                       outbox.c.next_attempt_at <= now)
                .values(next_attempt_at=now + self.lease, claimed_at=now)
            ).rowcount)

    def _sent(self, row: OutboxRow, now: datetime, refused: dict[str, tuple[int, bytes]],
              report: FlushReport) -> None:
        note = None
        if refused:  # some recipients got it: sending again would duplicate theirs
            note = "sent, but refused for " + "; ".join(
                f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in refused.items())
            log.warning("outbox row %d: %s", row.id, note)
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox).where(outbox.c.id == row.id).values(
                    state="sent", sent_at=now, attempts=row.attempts + 1, last_error=note,
                    claimed_at=None))
            self._request_state(conn, row.id, "sent", sent_at=now)
            if row.reply_request_id is not None and row.ledger_id is not None:
                conn.execute(update(ledger)
                             .where(ledger.c.id == row.ledger_id, ledger.c.state == "decided")
                             .values(state="replied"))
        report.sent.append(row.id)
        log.info("outbox row %d (%s) sent to %s", row.id, row.message_id, row.to_addrs)

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
            log.warning("outbox row %d: %s; next attempt %s", row.id, error, retry_at)

    def _permanent(self, row: OutboxRow, now: datetime, error: str, report: FlushReport) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbox).where(outbox.c.id == row.id, outbox.c.state == "queued").values(
                    state="failed", attempts=row.attempts + 1, next_attempt_at=now,
                    last_error=error[:2000], claimed_at=None)
            ).rowcount
            if done:
                self._request_state(conn, row.id, "failed", reason=error[:2000])
        if not done:
            return
        report.failed.append(row.id)
        log.error("outbox row %d (%s to %s) failed: %s", row.id, row.message_id, row.to_addrs,
                  error)
        if self.on_permanent_failure is not None:
            failed = self.get(row.id)
            assert failed is not None
            try:
                self.on_permanent_failure(failed)
            except Exception:
                log.exception("outbox row %d: on_permanent_failure raised", row.id)

    @staticmethod
    @staticmethod
    def _request_state(conn: Connection, row_id: int, state: str,
                       **submission_values: Any) -> None:
        """Keep what the outbox row carries out — a reply request, or a contractor's
        submission (with `submission_values`) — in step with the row's new state."""
        request = select(outbox.c.reply_request_id).where(outbox.c.id == row_id).scalar_subquery()
        conn.execute(update(reply_requests).where(reply_requests.c.id == request)
                     .values(state=state))
        mail = (select(outbox.c.message_id)
                .where(outbox.c.id == row_id, outbox.c.kind == "submission").scalar_subquery())
        conn.execute(update(submissions)
                     .where(submissions.c.message_id == mail,
                            submissions.c.state.in_(_SUBMISSION_FROM[state]))
                     .values(state=state, **submission_values))

    # -- administration ---------------------------------------------------------------
    def get(self, row_id: int, with_raw: bool = False) -> OutboxRow | None:
        columns = [*_ROW_COLUMNS, outbox.c.raw] if with_raw else _ROW_COLUMNS
        with self.engine.connect() as conn:
            row = conn.execute(select(*columns).where(outbox.c.id == row_id)).first()
        return _outbox_row(row._mapping) if row else None

    def rows(self, state: str | None = None, with_raw: bool = False) -> list[OutboxRow]:
        columns = [*_ROW_COLUMNS, outbox.c.raw] if with_raw else _ROW_COLUMNS
        query = select(*columns).order_by(outbox.c.id)
        if state is not None:
            query = query.where(outbox.c.state == state)
        with self.engine.connect() as conn:
            return [_outbox_row(row._mapping) for row in conn.execute(query)]

    def retry(self, row_id: int, now: datetime) -> bool:
        """A failed row goes back in line with fresh attempts and a new deadline."""
        now = _utc(now)
        row = self.get(row_id)
        if row is None or row.state != "failed":
            return False
        with self.engine.begin() as conn:
            if row.kind == "submission" and conn.execute(
                    select(submissions.c.id).where(submissions.c.message_id == row.message_id)
            ).first() is None:
                log.warning("outbox row %d is a submission the notice's later submission "
                            "replaced: not sent again", row_id)
                return False
            done = conn.execute(
                update(outbox).where(outbox.c.id == row_id, outbox.c.state == "failed").values(
                    state="queued", attempts=0, next_attempt_at=now,
                    deadline=self._deadline(now, row.immediate, row.window))
            ).rowcount
            if done:
                self._request_state(conn, row_id, "queued", reason=None)
        return bool(done)

    def replies(self, state: str | None = None) -> list[ReplyRow]:
        """Reply requests (oldest first), e.g. the `failed` ones no outbox row stands for."""
        query = select(reply_requests).order_by(reply_requests.c.id)
        if state is not None:
            query = query.where(reply_requests.c.state == state)
        with self.engine.connect() as conn:
            return [_reply_row(row._mapping) for row in conn.execute(query)]

    def retry_reply(self, request_id: int) -> bool:
        """A request that could not be rendered is rendered again at the next run (after
        the template or the configuration was fixed); False if it is not such a request."""
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(reply_requests)
                .where(reply_requests.c.id == request_id, reply_requests.c.state == "failed",
                       reply_requests.c.error.is_not(None))
                .values(state="stored", error=None, failed_at=None)
            ).rowcount)

    def cancel_reply(self, request_id: int) -> bool:
        """A request not yet rendered, or that could not be, will never be sent."""
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(reply_requests)
                .where(reply_requests.c.id == request_id,
                       (reply_requests.c.state == "stored")
                       | ((reply_requests.c.state == "failed")
                          & reply_requests.c.error.is_not(None)))
                .values(state="cancelled")
            ).rowcount)

    def cancel(self, row_id: int) -> bool:
        """A queued or failed row will not be sent."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.state.in_(("queued", "failed")))
                .values(state="cancelled")
            ).rowcount
            if done:
                self._request_state(conn, row_id, "cancelled")
        return bool(done)

    def failed_since(self, since: datetime) -> list[OutboxRow]:
        """Rows that failed at or after `since` (a failed row's next_attempt_at is when)."""
        query = (
            select(*_ROW_COLUMNS)
            .where(outbox.c.state == "failed", outbox.c.next_attempt_at >= _utc(since))
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
        )
        with self.engine.connect() as conn:
            return [_outbox_row(row._mapping) for row in conn.execute(query)]

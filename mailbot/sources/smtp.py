"""The SMTP / LMTP intake listener: 250 only after the message is durable (docs/reliability.md).

An aiosmtpd server on its own thread and event loop. A recipient is accepted at RCPT time
only if it maps to a mailbot mailbox (or a default mailbox is configured), otherwise 550.
After DATA the raw bytes exactly as the client sent them (dot-unstuffed), with two lines
prepended — `Return-Path` (the envelope sender) and `X-Mailbot-Client` (the client's address,
HELO name and protocol, for sender authentication: mailbot/auth/trace.py), neither with a
date, so the ledger's content hash still matches on a sender's retry — go to
`Ledger.receive()` once per distinct mailbox, in a thread executor so the event loop keeps serving other clients. Only
when that returned is the message acknowledged; if it raised (spool folder gone, disk full,
database locked or down) the answer is `451 4.3.0`, so the sender keeps the message and
tries again — the ledger finds the rows that did get written and makes no second one.
`451` is only for such faults of ours: nothing a sender puts in a message makes recording
it fail (the raw bytes are spooled as they are, and every text column the ledger fills from
them is `MailText`, so a NUL or a lone surrogate never reaches the database), and every
message we can store is accepted and then decided. An error that is not a temporary fault
is logged as a bug with its traceback; the answer is still `451` (a bug is fixed and the
sender's retry then succeeds, where a `5xx` would have lost the mail for good).

LMTP (RFC 2033 §4.2) owes one reply per accepted recipient after the final ".". aiosmtpd's
`LMTP` class pushes exactly one reply (its `smtp_DATA` is SMTP's; aio-libs/aiosmtpd#517), so
`_LMTPServer` counts the recipients when it sends the 354 and answers the final "." with one
line per recipient: the handler's per-recipient statuses, or aiosmtpd's own refusal (552 too
much data, 500 line too long) repeated for each recipient so the client stays in step.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mailbot.auth import trace_header
from mailbot.ledger import Ledger, Receipt

log = logging.getLogger(__name__)

REFUSED_RCPT = "550 5.1.1 Recipient address rejected: user unknown"
ACCEPTED_RCPT = "250 2.1.5 Recipient OK"
LOCAL_ERROR = "451 4.3.0 Requested action aborted: local error in processing"
START_TIMEOUT = 10.0
STOP_GRACE = 10.0  # seconds stop() lets a message being written finish and get its answer
LEDGER_THREADS = 4


@dataclass(frozen=True)
class ListenerSettings:
    host: str = "127.0.0.1"
    port: int = 8025  # 0: pick a free port (see IntakeListener.port)
    lmtp: bool = False
    max_message_bytes: int = 50 * 1024 * 1024  # aiosmtpd data_size_limit → 552 when exceeded
    line_length_limit: int = 10000  # aiosmtpd line_length_limit (per server) → 500 when exceeded
    # recipient address (case-insensitive) → mailbot mailbox name; a recipient not listed is
    # refused with 550 at RCPT time, unless `default_mailbox` is set.
    mailboxes: dict[str, str] = field(default_factory=dict)
    default_mailbox: str | None = None


class _Replies(str):
    """The replies to the final "." of an LMTP DATA, one per accepted recipient in RCPT order.

    As a plain string it is the lines joined by CRLF, which is still right on the wire should
    it ever reach a server that pushes it as one status."""

    lines: tuple[str, ...]

    def __new__(cls, lines: Sequence[str]) -> _Replies:
        self = super().__new__(cls, "\r\n".join(lines))
        self.lines = tuple(lines)
        return self


class _SMTPServer(SMTP):
    def __init__(self, handler: Any, *, line_length_limit: int, **kwargs: Any) -> None:
        # SMTP.__init__ sizes its StreamReader from self.line_length_limit (a class attribute);
        # an instance attribute set first makes the limit this server's own.
        self.line_length_limit = line_length_limit
        super().__init__(handler, **kwargs)


class _LMTPServer(LMTP):
    """aiosmtpd's LMTP with one reply per accepted recipient after DATA (RFC 2033 §4.2)."""

    def __init__(self, handler: Any, *, line_length_limit: int, **kwargs: Any) -> None:
        self.line_length_limit = line_length_limit
        self._in_data = False
        self._owed = 0  # replies owed for the final "." (set when the 354 went out)
        super().__init__(handler, **kwargs)

    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False
            self._owed = 0

    async def push(self, status: AnyStr) -> None:
        if self._owed:
            # The reply to the final ".": the handler's per-recipient lines, or aiosmtpd's own
            # single refusal (552, 500) once for every recipient.
            owed, self._owed = self._owed, 0
            lines = status.lines if isinstance(status, _Replies) else (status,) * owed
            for line in lines:
                await super().push(line)
            return
        await super().push(status)
        if self._in_data and status[:3] in ("354", b"354") and self.envelope is not None:
            self._owed = len(self.envelope.rcpt_tos)


# Faults of ours that pass: the database unreachable, locked, restarting or out of
# connections; the spool's disk full or its folder gone.
TEMPORARY_FAULTS: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, DisconnectionError, PoolTimeout, OSError, TimeoutError,
)


def _describe(exc: BaseException) -> str:
    """The error without message content: SQLAlchemy errors carry the statement's parameters
    (sender, subject), so only the driver's own message is kept."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        exc = exc.orig
    return f"{type(exc).__name__}: {str(exc)[:500]}"


class _Handler:
    """aiosmtpd hooks; the ledger work runs in the listener's executor."""

    def __init__(self, listener: IntakeListener) -> None:
        self._listener = listener

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if self._listener.mailbox_for(address) is None:
            log.info("%r refused recipient %s", session.peer, address,
                     extra={"peer": session.peer, "recipient": address})
            return REFUSED_RCPT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return ACCEPTED_RCPT

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        listener = self._listener
        # We are the final delivery: record the envelope sender as Return-Path, as an MTA
        # would (RFC 5321 §4.4), so a bounce's null sender is seen and never answered.
        # Then our trace header (mailbot/auth/trace.py): the client's address and HELO for
        # SPF, believed only as these first lines; no date, so a retry keeps its bytes.
        sender = (envelope.mail_from or "").strip("<>")  # aiosmtpd gives "<>" for null
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else ""
        trace = trace_header(str(peer), session.host_name,
                             "LMTP" if listener.settings.lmtp else "SMTP")
        raw = b"Return-Path: <" + sender.encode("utf-8", "replace") + b">\r\n" + trace + (
            envelope.original_content or b"")
        targets = [listener.mailbox_for(rcpt) or "" for rcpt in envelope.rcpt_tos]
        mailboxes = list(dict.fromkeys(targets))
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(
            listener._executor, listener._receive_all, mailboxes, raw, session.peer
        )
        listener._jobs.add(job)
        job.add_done_callback(listener._jobs.discard)
        listener._inflight += 1
        try:
            # Shielded: if the client hangs up (or stop() cancels us) while the ledger is
            # writing, the write still finishes; the sender, unanswered, retries and the
            # ledger recognises the bytes.
            results = await asyncio.shield(job)
        finally:
            listener._inflight -= 1  # after the await: the answer is pushed before we yield
        if listener.settings.lmtp:
            return _Replies([_status([results[mailbox]]) for mailbox in targets])
        return _status([results[mailbox] for mailbox in mailboxes])


def _status(receipts: Sequence[Receipt | None]) -> str:
    if any(receipt is None for receipt in receipts):
        return LOCAL_ERROR
    ids = ", ".join(str(receipt.id) for receipt in receipts if receipt is not None)
    return f"250 2.0.0 OK: ledger {ids}"


class IntakeListener:
    """An SMTP or LMTP server that acknowledges a message only once the ledger holds it."""

    def __init__(
        self,
        settings: ListenerSettings,
        ledger: Ledger,
        on_new: Callable[[int], None] | None = None,
        on_received: Callable[[str, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.on_new = on_new
        self.on_received = on_received  # (mailbox, new rows): the daemon's counters
        self._mailboxes = {addr.strip().lower(): box for addr, box in settings.mailboxes.items()}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._bound_port: int | None = None
        self._start_error: BaseException | None = None
        self._connections: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._inflight = 0  # DATA handlers waiting for the ledger
        self._jobs: set[asyncio.Future[dict[str, Receipt | None]]] = set()
        self._hostname = ""

    # -- public -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port listened on (the one picked when settings.port is 0) while running."""
        return self._bound_port if self._bound_port is not None else self.settings.port

    def mailbox_for(self, address: str) -> str | None:
        return self._mailboxes.get(address.strip().lower(), self.settings.default_mailbox)

    def start(self) -> None:
        """Bind and serve on a background thread; returns once the port is listening."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the intake listener is already running")
            if not self._hostname:
                self._hostname = socket.getfqdn()  # once: aiosmtpd would ask per connection
            self._start_error = None
            self._executor = ThreadPoolExecutor(LEDGER_THREADS, "mailbot-intake-ledger")
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=self._serve, args=(loop, ready), name="mailbot-intake", daemon=True
            )
            thread.start()
            if not ready.wait(START_TIMEOUT):
                loop.call_soon_threadsafe(loop.stop)
                thread.join(START_TIMEOUT)
                self._executor.shutdown(wait=False)
                self._executor = None
                raise TimeoutError("the intake listener did not start listening in time")
            if self._start_error is not None:
                thread.join()
                self._executor.shutdown(wait=False)
                self._executor = None
                raise self._start_error
            self._loop, self._thread = loop, thread
            kind = "LMTP" if self.settings.lmtp else "SMTP"
            log.info("%s intake listening on %s:%d", kind, self.settings.host, self.port)

    def stop(self) -> None:
        """Stop listening, let messages being written finish, close connections, free the port."""
        with self._lock:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            if self._executor is not None:
                self._executor.shutdown(wait=True)  # a write cut off by the grace still ends
            self._thread = self._loop = self._executor = None
            self._bound_port = None
            log.info("intake listener stopped")

    # -- the loop thread ----------------------------------------------------------------
    def _serve(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                loop.create_server(self._protocol, self.settings.host, self.settings.port)
            )
        except BaseException as exc:  # bind failed: start() re-raises it
            self._start_error = exc
            loop.close()
            ready.set()
            return
        self._bound_port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(self._shutdown(server))
            finally:
                loop.close()

    def _protocol(self) -> SMTP:
        settings = self.settings
        server_class = _LMTPServer if settings.lmtp else _SMTPServer
        server = server_class(
            _Handler(self),
            line_length_limit=settings.line_length_limit,
            data_size_limit=settings.max_message_bytes,
            decode_data=False,  # keep the bytes; advertises 8BITMIME
            enable_SMTPUTF8=True,
            hostname=self._hostname,
            ident="mailbot intake",
        )
        self._connections.add(server)
        return server

    async def _shutdown(self, server: asyncio.AbstractServer) -> None:
        server.close()  # no new connections; the port is free once this returns
        deadline = time.monotonic() + STOP_GRACE
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for job in list(self._jobs):
            job.cancel()  # the thread still finishes the write; its result is not awaited
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.close()  # flushes an answer already written
        await asyncio.sleep(0)
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    # -- executor -----------------------------------------------------------------------
    def _receive_all(
        self, mailboxes: list[str], raw: bytes, peer: Any
    ) -> dict[str, Receipt | None]:
        """Ledger.receive for each mailbox; None where it failed. Calls on_received and on_new
        for new rows."""
        results: dict[str, Receipt | None] = {}
        for mailbox in mailboxes:
            receipt = self._receive(mailbox, raw, peer)
            results[mailbox] = receipt
            if receipt is None:
                continue
            log.info("%r: %d-byte message for mailbox %r is ledger row %d%s", peer, len(raw),
                     mailbox, receipt.id, "" if receipt.new else " (already recorded)",
                     extra={"ledger_id": receipt.id, "mailbox": mailbox, "peer": peer,
                            "bytes": len(raw), "new": receipt.new})
        fresh = [mailbox for mailbox, r in results.items() if r is not None and r.new]
        if fresh:
            try:
                if self.on_new is not None:
                    self.on_new(len(fresh))
                if self.on_received is not None:
                    for mailbox in fresh:
                        self.on_received(mailbox, 1)
            except Exception:
                log.exception("a new-row callback failed (the rows are recorded)")
        return results

    def _receive(self, mailbox: str, raw: bytes, peer: Any) -> Receipt | None:
        """`Ledger.receive`; None (answer 451) when it could not record the message."""
        try:
            return self.ledger.receive(mailbox, raw)
        except Exception as exc:
            temporary = isinstance(exc, TEMPORARY_FAULTS)
            log.error(
                "%r: could not record a %d-byte message for mailbox %r, answered 451 (%s; %s)"
                "\n%s", peer, len(raw), mailbox, _describe(exc),
                "a temporary fault" if temporary else "not a temporary fault: a bug to fix",
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
                extra={"mailbox": mailbox, "peer": peer, "bytes": len(raw)},
            )
            return None

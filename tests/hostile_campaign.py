"""The hostile-mail campaign against a running daemon, shared by the fuzz test and the bench.

One daemon (`mailbot.daemon.Daemon`, in this process) with two mailboxes on one LMTP
listener: an issuer's inbox (〇〇市) and a contractor's notification queue (〇〇建設),
on the store named by the caller (SQLite or PostgreSQL). The guarantees of the sample
mails are registered, so unmutated notices verify on the issuer side and find their issuer
on the contractor side. `deliver()` sends each mail over LMTP the RFC 2033 way (one reply
per recipient) to the issuer's inbox, the contractor's queue, or both; `settled()` waits,
with a deadline, until no ledger row is left in received/processing; `summary()` counts
what became of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from mailbot.auth import trace_header
from mailbot.config import Config
from mailbot.daemon import Daemon
from mailbot.samples.catalog import all_samples
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import ledger, outbox, reply_requests, submissions

from .configs import CONTRACTOR, smtp_config, submitting_issuer

ISSUER_INBOX = "keiyaku@issuer.example.jp"
QUEUE = "denshi@maru.example.jp"
ENVELOPE_SENDER = "tanto@maru-kensetsu.example.jp"

CONFIG = """
[store]
url = "{url}"
[spool]
dir = "{spool}"
""" + smtp_config("{smtp_port}", extra="flush_seconds = {flush_seconds}\n") + CONTRACTOR + """
""" + submitting_issuer("maru", "〇〇市", issuer='staff = ["kensa@issuer.example.jp"]\n',
                        submission='fields = ["受注者", "担当者氏名・連絡先", "工事名", "保証名称"]\n'
                        ) + """
[[projects]]
name = "浄水場"
project = "浄水場"
issuer = "maru"

[[mailboxes]]
name = "keiyaku"
role = "issuer"
issuer = "maru"
kind = "lmtp"
listen = "127.0.0.1:{listen_port}"
addresses = ["{inbox}"]

[[mailboxes]]
name = "queue"
role = "contractor"
kind = "lmtp"
listen = "127.0.0.1:{listen_port}"
addresses = ["{queue}"]
"""


def write_config(folder: Path, store_url: str, *, smtp_port: int = 9, listen_port: int = 0,
                 flush_seconds: float = 30) -> Path:
    """mailbot.toml in `folder`: the relay at `smtp_port` (nothing listens on 9: the tests
    render the outbox but never send), the LMTP listener on `listen_port` (0: any)."""
    path = folder / "mailbot.toml"
    path.write_text(CONFIG.format(url=store_url, spool=folder / "spool", inbox=ISSUER_INBOX,
                                  queue=QUEUE, smtp_port=smtp_port, listen_port=listen_port,
                                  flush_seconds=flush_seconds), encoding="utf-8")
    return path


def register_samples(store: Store) -> None:
    """Every guarantee the sample mails carry, issued by 〇〇市."""
    notices = {(n["guarantee_number"], n["auth_key"]): n for s in all_samples()
               for n in s.expected["notices"]}
    store.apply([GuaranteeEvent(number, "new", key, issuer="〇〇市", kind=n["kind"],
                                project_name=n["project_name"], contractor=n["contractor"],
                                source="hostile")
                 for (number, key), n in sorted(notices.items())])


class LogCapture(logging.Handler):
    """Keeps every record of level ERROR or more that carries a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.tracebacks: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        self.errors.append(text[:2000])
        if record.exc_info or "Traceback" in text:
            self.tracebacks.append(self.format(record))


class RunningDaemon:
    """The daemon on its own thread, as `mailbot run` runs it; its LMTP port once started.

    The outbox tick is set far beyond the run (`outbox_seconds`): the caller renders the
    outbox with its own clock (`Outgoing.queue(now)`)."""

    def __init__(self, config: Config, store: Store, workers: int = 2,
                 outbox_seconds: float = 24 * 3600) -> None:
        self.daemon = Daemon(config, store, workers=workers, outbox_seconds=outbox_seconds)
        self.thread = threading.Thread(target=self._run, name="hostile-daemon", daemon=True)
        self.started = threading.Event()
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.daemon.start()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.started.set()
        self.daemon.run()

    def __enter__(self) -> RunningDaemon:
        self.thread.start()
        if not self.started.wait(60) or self.error is not None:
            raise RuntimeError(f"the daemon did not start: {self.error!r}")
        return self

    @property
    def port(self) -> int:
        return self.daemon._listeners[0].port

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop.set()
        self.daemon.news.set()
        self.thread.join(timeout=60)
        self.daemon.shutdown()


def recipients_for(index: int) -> tuple[str, ...]:
    """Mail i goes to the issuer's inbox, the contractor's queue, or (every third) both."""
    return ((ISSUER_INBOX,), (QUEUE,), (ISSUER_INBOX, QUEUE))[index % 3]


@dataclass
class Delivery:
    name: str
    recipients: tuple[str, ...]
    codes: list[int] = field(default_factory=list)  # one per recipient, in RCPT order
    replies: list[str] = field(default_factory=list)


def lmtp_deliver(port: int, raw: bytes, rcpts: Iterable[str],
                 sender: str = ENVELOPE_SENDER) -> list[tuple[int, str]]:
    """One LMTP transaction: after DATA one reply per accepted recipient (RFC 2033 §4.2)."""
    out: list[tuple[int, str]] = []
    with smtplib.LMTP("127.0.0.1", port, timeout=120) as client:
        client.ehlo()
        code, reply = client.mail(sender, ["BODY=8BITMIME"])
        if code != 250:
            return [(code, reply.decode("utf-8", "replace"))] * len(list(rcpts))
        accepted = []
        for rcpt in rcpts:
            code, reply = client.rcpt(rcpt)
            if code == 250:
                accepted.append(rcpt)
            else:
                out.append((code, reply.decode("utf-8", "replace")))
        if not accepted:
            return out
        client.putcmd("data")
        code, reply = client.getreply()
        if code != 354:
            return out + [(code, reply.decode("utf-8", "replace"))] * len(accepted)
        quoted = smtplib._quote_periods(raw)  # noqa: SLF001 — smtplib's own dot-stuffing
        if quoted[-2:] != b"\r\n":
            quoted += b"\r\n"
        client.send(quoted + b".\r\n")
        for _ in accepted:
            code, reply = client.getreply()
            out.append((code, reply.decode("utf-8", "replace")))
        client.noop()
    return out


def deliver(port: int, mails: Iterable[tuple[str, bytes]]) -> list[Delivery]:
    deliveries = []
    for index, (name, raw) in enumerate(mails):
        rcpts = recipients_for(index)
        delivery = Delivery(name, rcpts)
        for code, reply in lmtp_deliver(port, raw, rcpts):
            delivery.codes.append(code)
            delivery.replies.append(reply)
        deliveries.append(delivery)
    return deliveries


def unsettled(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.state.in_(("received", "processing")))).scalar_one()


def wait_settled(store: Store, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while unsettled(store):
        if time.monotonic() > deadline:
            raise AssertionError(f"{unsettled(store)} ledger rows still in received/processing "
                                 f"after {seconds:g} s")
        time.sleep(0.2)


@dataclass
class Summary:
    rows: int
    states: Counter[str]
    undecided: list[str]  # sha256 of decided rows without a decision record
    quarantined: list[tuple[str, str]]  # (sha256 of the stored bytes, last error)
    stuck: list[str]  # sha256 of rows still received/processing
    reply_states: Counter[str]
    outbox_states: Counter[str]
    submissions: Counter[str]
    statuses: Counter[str]  # decision status per row


def summary(store: Store) -> Summary:
    with store.engine.connect() as conn:
        rows = conn.execute(select(ledger.c.id, ledger.c.sha256, ledger.c.state,
                                   ledger.c.decision, ledger.c.last_error)).all()
        reply_states = Counter(conn.execute(select(reply_requests.c.state)).scalars())
        outbox_states = Counter(conn.execute(select(outbox.c.state)).scalars())
        submission_states = Counter(conn.execute(select(submissions.c.state)).scalars())
    statuses: Counter[str] = Counter()
    undecided = []
    for row in rows:
        if row.state in ("decided", "replied"):
            if not row.decision:
                undecided.append(row.sha256)
            else:
                statuses[json.loads(row.decision).get("status", "?")] += 1
    return Summary(
        rows=len(rows),
        states=Counter(row.state for row in rows),
        undecided=undecided,
        quarantined=[(row.sha256, row.last_error or "") for row in rows
                     if row.state == "quarantined"],
        stuck=[row.sha256 for row in rows if row.state in ("received", "processing")],
        reply_states=reply_states,
        outbox_states=outbox_states,
        submissions=submission_states,
        statuses=statuses,
    )


def stored_sha256(raw: bytes, sender: str = ENVELOPE_SENDER) -> str:
    """The ledger's content hash of `raw` delivered by `lmtp_deliver` (the listener adds the
    Return-Path and its trace header, smtplib a final CRLF), to name the mail behind a row."""
    body = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
    trace = trace_header("127.0.0.1", socket.getfqdn(), "LMTP")  # smtplib's LHLO name
    return hashlib.sha256(b"Return-Path: <" + sender.encode() + b">\r\n" + trace + body
                          ).hexdigest()


def render_outbox(daemon: Daemon, now: datetime) -> int:
    """Render every stored reply into the outbox with the caller's clock (no sending)."""
    return daemon.outgoing.queue(now)

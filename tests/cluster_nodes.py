"""Several `mailbot run` nodes on one PostgreSQL store, for tests/test_cluster.py and
bench/bench_cluster.py.

`Cluster` writes one working folder and one config file per node (they differ only in the
node name, the spool folder and the LMTP listener's port), starts each node as the real
console script in a subprocess (its output in `<folder>/mailbot.log`), delivers a corpus
(`corpus`) to two Dovecot IMAP mailboxes and to the nodes' LMTP listeners, and kills or
stops the nodes. `PgServer` is a PostgreSQL server of a test's own, which it may stop and
start again. The read-only checks (`ledger_rows`, `sink_replies` …) read the store and the
relay's records and say what they found; the test decides what must hold.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as time_of_day
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mailbot.cluster import lease_rows
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import ledger, outbox, reply_requests

from .servers import PG_BIN, _as_postgres, _start_postgres, free_port

JST = ZoneInfo("Asia/Tokyo")
KEY = "Z28YUEAJ38ux"
# Two IMAP mailboxes (two Dovecot users) and one LMTP mailbox, all 〇〇市's.
IMAP_USERS = {"keiyaku": "keiyaku@issuer.example.jp", "nyusatsu": "nyusatsu@issuer.example.jp"}
DOVECOT_USERS = {address: "secret" for address in IMAP_USERS.values()}
LMTP_BOX, LMTP_ADDRESS = "uketsuke", "uketsuke@issuer.example.jp"
STAFF = ("kanri1@issuer.example.jp", "kanri2@issuer.example.jp")
DONE, REVIEW = "電子保証/処理済", "電子保証/要確認"
DIGEST_SUBJECT = "【電子保証受付】日次報告"
SECRET = "test-secret-for-the-store-0123456789"


# -- the corpus -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mail:
    index: int
    box: str  # "keiyaku" / "nyusatsu" (IMAP) or LMTP_BOX
    sender: str
    message_id: str
    raw: bytes
    registered: bool  # its number is in the store with its key: verified, else discrepancy
    wants_reply: bool  # False: Auto-Submitted (RFC 3834), mailbot must not answer

    @property
    def imap(self) -> bool:
        return self.box != LMTP_BOX


def number(i: int, registered: bool) -> str:
    return f"35075-{i:05d}M" if registered else f"36800-{i:05d}M"


def corpus(total: int) -> list[Mail]:
    """`total` notices: a third to each IMAP mailbox and a third to the LMTP mailbox; three
    in four carry a registered number and its key (a confirmation), the others an unknown
    number (a discrepancy); one in ten is Auto-Submitted (no reply deserved). Each mail has a
    sender of its own, so no sender's failed checks reach the throttle (which would withhold
    the reply by design)."""
    boxes = (*IMAP_USERS, LMTP_BOX)
    mails = []
    for i in range(total):
        box = boxes[i % 3]
        registered = i % 4 != 3
        wants_reply = i % 10 != 7
        sender = f"tanto{i}@kensetsu{i % 13}.example.jp"
        message = EmailMessage()
        message["From"] = sender
        message["To"] = IMAP_USERS.get(box, LMTP_ADDRESS)
        message["Subject"] = f"【電子保証】工事番号R8-{i:03d} 〇〇浄水場△△修繕工事"
        message_id = make_msgid(idstring=f"c{i}", domain="kensetsu.example.jp")
        message["Message-ID"] = message_id
        if not wants_reply:
            message["Auto-Submitted"] = "auto-replied"
        message.set_content(f"〇〇市 契約検査課 御中\n\n保証契約番号：{number(i, registered)}\n"
                            f"認証キー：{KEY}\n\n〇〇建設 株式会社\n")
        mails.append(Mail(i, box, sender, message_id, message.as_bytes(), registered,
                          wants_reply))
    return mails


def guarantee_events(total: int) -> list[GuaranteeEvent]:
    """The registered numbers of `corpus(total)`, with the key the mails carry."""
    return [GuaranteeEvent(number(i, True), "new", KEY, issuer="〇〇市", source="t")
            for i in range(total) if i % 4 != 3]


# -- configuration ----------------------------------------------------------------------------

def digest_minute(ahead: float = 75.0) -> time_of_day:
    """A minute of the day in Japan at least `ahead` seconds from now (this process's
    clock, which is the nodes' clock too, faked or not)."""
    at = (datetime.now(JST) + timedelta(seconds=ahead + 59)).replace(second=0, microsecond=0)
    return at.time()


def node_config(*, node: str, folder: Path, store_url: str, imap_port: int, relay_port: int,
                resolver: str, lmtp_port: int, lease_seconds: int, claim_seconds: int,
                digest_at: time_of_day | None) -> str:
    """One node's mailbot.toml. The send window is always open (tests run at any hour) and
    the outbox flushes every second, so replies and the digest go at once."""
    digest = (f'[digest]\nat = "{digest_at:%H:%M}"\n' if digest_at is not None
              else "[digest]\nenabled = false\n")
    imap = "".join(
        f'[[mailboxes]]\nname = "{box}"\nrole = "issuer"\nissuer = "maru"\nkind = "imap"\n'
        f'host = "127.0.0.1"\nport = {imap_port}\ntls = "none"\nuser = "{user}"\n'
        'password_env = "MAILBOT_TEST_IMAP_PASSWORD"\npoll_seconds = 1\n'
        for box, user in IMAP_USERS.items())
    staff = ", ".join(f'"{a}"' for a in STAFF)
    return (
        f'[store]\nurl = "{store_url}"\n[spool]\ndir = "{folder / "spool"}"\n'
        f'[cluster]\nnode = "{node}"\nlease_seconds = {lease_seconds}\n'
        f'claim_seconds = {claim_seconds}\n'
        f'[auth]\nresolvers = ["{resolver}"]\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {relay_port}\nfrom = "keiyaku@issuer.example.jp"\n'
        'flush_seconds = 1\ntimeout = 15\n'
        '[send_window]\nstart = "00:00"\nend = "23:59:59.999999"\n'
        'weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        'skip_holidays = false\nyear_end_closed = false\n'
        'immediate = ["confirmation", "discrepancy"]\n'
        f'{digest}'
        f'[issuers.maru]\nname = "〇〇市"\nstaff = [{staff}]\n'
        f'{imap}'
        # Every node lists the LMTP mailbox (a node decides rows any node received, and a
        # row of a mailbox it does not know fails there), each on its own port.
        f'[[mailboxes]]\nname = "{LMTP_BOX}"\nrole = "issuer"\nissuer = "maru"\nkind = "lmtp"\n'
        f'listen = "127.0.0.1:{lmtp_port}"\naddresses = ["{LMTP_ADDRESS}"]\n'
    )


# -- the nodes --------------------------------------------------------------------------------

@dataclass
class NodeProcess:
    name: str
    folder: Path
    config: Path
    lmtp_port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.folder / "mailbot.log"

    def start(self, env: dict[str, str]) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 — the child keeps it
        command = [sys.executable, "-m", "mailbot.cli", "run", "--config", str(self.config),
                   "--workers", "1"]
        try:
            self.proc = subprocess.Popen(command, env=env, cwd=self.folder, stdout=log,
                                         stderr=log)
        finally:
            log.close()
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, seconds: float = 60) -> None:
        """SIGTERM, then SIGKILL if it is still there after `seconds`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Cluster:
    """`nodes` nodes n1…nN on `store_url`; every node has an LMTP listener on its own port,
    mail is delivered over LMTP to the first `lmtp_nodes` only."""

    def __init__(self, root: Path, *, store_url: str, dovecot: Any, relay_port: int,
                 resolver: str, nodes: int = 3, lmtp_nodes: int = 2, lease_seconds: int = 5,
                 claim_seconds: int = 10, digest_at: time_of_day | None = None) -> None:
        self.dovecot = dovecot
        self.lmtp_nodes = lmtp_nodes
        self.lease_seconds = lease_seconds
        self.env = {**os.environ, "MAILBOT_SECRET": SECRET,
                    "MAILBOT_TEST_IMAP_PASSWORD": "secret"}
        self.nodes: list[NodeProcess] = []
        self._next_lmtp = 0
        for n in range(1, nodes + 1):
            folder = root / f"n{n}"
            folder.mkdir(parents=True, exist_ok=True)
            port = free_port()
            config = folder / "mailbot.toml"
            config.write_text(node_config(
                node=f"n{n}", folder=folder, store_url=store_url, imap_port=dovecot.imap_port,
                relay_port=relay_port, resolver=resolver, lmtp_port=port,
                lease_seconds=lease_seconds, claim_seconds=claim_seconds, digest_at=digest_at),
                encoding="utf-8")
            self.nodes.append(NodeProcess(f"n{n}", folder, config, port))

    def node(self, name: str) -> NodeProcess:
        return next(n for n in self.nodes if n.name == name)

    def start(self, count: int | None = None) -> None:
        for node in self.nodes[:count]:
            node.start(self.env)

    def started(self) -> list[NodeProcess]:
        return [n for n in self.nodes if n.proc is not None]

    def dead(self) -> list[str]:
        """Nodes started and not killed on purpose that have exited."""
        return [n.name for n in self.started() if not n.alive]

    def stop(self) -> None:
        for node in self.nodes:
            with suppress(Exception):
                node.stop()

    def ready(self, engine: Engine) -> bool:
        """Every started node holds its node lease and accepts on its LMTP port."""
        try:
            live = {r.node for r in lease_rows(engine) if r.name.startswith("node:")
                    and not r.expired}
        except Exception:
            return False
        return all(n.name in live and port_open(n.lmtp_port) for n in self.started()
                   if n.alive)

    def deliver(self, mail: Mail) -> str:
        """Deliver `mail`: IMAP ones into Dovecot (LMTP), the others to the LMTP listener of
        one of the first `lmtp_nodes` nodes, in turn (a dead one is skipped); returns where."""
        if mail.imap:
            self.dovecot.deliver(IMAP_USERS[mail.box], mail.raw, sender=mail.sender)
            return "dovecot"
        targets = [n for n in self.nodes[:self.lmtp_nodes] if n.alive]
        if not targets:
            raise RuntimeError("no LMTP node alive")
        self._next_lmtp += 1
        last: Exception | None = None
        for k in range(len(targets)):
            node = targets[(self._next_lmtp + k) % len(targets)]
            try:
                lmtp_send(node.lmtp_port, mail)
                return node.name
            except (OSError, smtplib.SMTPException) as exc:
                last = exc
        raise RuntimeError(f"no LMTP node took mail {mail.index}: {last}")

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- {n.name} ({n.log_path}) ---\n{n.log_tail(lines)}"
                         for n in self.started())


def lmtp_send(port: int, mail: Mail) -> None:
    with smtplib.LMTP("127.0.0.1", port, timeout=30) as lmtp:
        refused = lmtp.sendmail(mail.sender, [LMTP_ADDRESS], mail.raw)
    if refused:
        raise smtplib.SMTPException(f"LMTP refused {refused}")


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: Callable[[], bool], seconds: float, what: str,
             logs: Callable[[], str] | None = None, poll: float = 0.2) -> float:
    """Until `check()` (an exception counts as not yet: the database may be out); returns
    the seconds waited. On timeout, AssertionError with `logs()`."""
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return time.monotonic() - started
        except Exception:
            pass
        time.sleep(poll)
    raise AssertionError(f"timed out after {seconds:g} s waiting for {what}"
                         + (f"\n{logs()}" if logs is not None else ""))


# -- what the store and the relay hold -------------------------------------------------------

@dataclass(frozen=True)
class Row:
    id: int
    mailbox: str
    message_id: str | None
    state: str
    action_state: str
    has_reply: bool
    last_error: str | None


def ledger_rows(engine: Engine) -> list[Row]:
    with engine.connect() as conn:
        rows = conn.execute(select(ledger.c.id, ledger.c.mailbox, ledger.c.message_id,
                                   ledger.c.state, ledger.c.action_state,
                                   ledger.c.last_error)).all()
        replies = set(conn.execute(select(reply_requests.c.ledger_id)).scalars())
    return [Row(r.id, r.mailbox, r.message_id, r.state, r.action_state, r.id in replies,
                r.last_error) for r in rows]


def decided(engine: Engine) -> int:
    """Rows decided (or replied) with their mailbox action done or none to do."""
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.state.in_(("decided", "replied")),
            ledger.c.action_state.in_(("done", "none")))).scalar_one()


def quarantined(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.state == "quarantined")).scalar_one()


def settled(engine: Engine, total: int) -> bool:
    """`total` rows decided, or some quarantined (the test then says which); and no reply
    waiting to be rendered or sent."""
    if quarantined(engine):
        return True
    with engine.connect() as conn:
        waiting = conn.execute(select(func.count()).select_from(reply_requests).where(
            reply_requests.c.state.notin_(("sent", "failed")))).scalar_one()
        unsent = conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.state == "queued")).scalar_one()
    return decided(engine) == total and waiting == 0 and unsent == 0


def stuck(engine: Engine, mails: list[Mail]) -> str:
    """What keeps the run from settling: ledger rows not decided (or with their mailbox
    action not done) and mails with no ledger row at all."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(ledger.c.id, ledger.c.mailbox, ledger.c.uid, ledger.c.state,
                   ledger.c.action_state, ledger.c.action, ledger.c.claimed_by,
                   ledger.c.claim_expires, ledger.c.attempts, ledger.c.last_error,
                   ledger.c.message_id).order_by(ledger.c.id)).all()
    seen = {r.message_id for r in rows}
    open_rows = [tuple(r) for r in rows
                 if r.state not in ("decided", "replied") or r.action_state not in ("done", "none")]
    missing = [(m.message_id, "imap" if m.imap else "lmtp") for m in mails
               if m.message_id not in seen]
    return f"{len(rows)} ledger rows; not settled: {open_rows}; no ledger row: {missing}"


def unsent(engine: Engine) -> list[tuple[Any, ...]]:
    """Outbox rows still queued: (id, kind, claimed_by, claimed_at, next_attempt_at,
    last_error)."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(outbox.c.id, outbox.c.kind, outbox.c.claimed_by, outbox.c.claimed_at,
                   outbox.c.next_attempt_at, outbox.c.last_error)
            .where(outbox.c.state == "queued").order_by(outbox.c.id))]


def lease_holder(engine: Engine, name: str) -> str | None:
    """The holder of an unexpired lease `name`, or None."""
    for row in lease_rows(engine):
        if row.name == name and not row.expired:
            return row.holder
    return None


@dataclass
class SinkReport:
    """What the relay accepted: replies by the original mail, repeats, staff mail."""

    replies: dict[str, set[str]] = field(default_factory=dict)  # original → reply IDs
    repeats: int = 0  # deliveries whose Message-ID the relay had accepted already
    unmatched: list[str] = field(default_factory=list)  # replies to no mail of the corpus
    digests: Counter[str] = field(default_factory=Counter)  # staff address → digests
    other_staff: list[str] = field(default_factory=list)  # subjects of alerts etc.


def sink_report(accepted: list[tuple[str, list[str], bytes]], mails: list[Mail]) -> SinkReport:
    originals = {m.message_id for m in mails}
    report = SinkReport()
    seen: set[str] = set()
    for _from, rcpts, raw in list(accepted):
        parsed = message_from_bytes(raw, policy=policy.default)
        message_id = str(parsed["Message-ID"] or "").strip()
        if message_id in seen:
            report.repeats += 1
        seen.add(message_id)
        subject = str(parsed["Subject"] or "")
        if subject.startswith(DIGEST_SUBJECT):
            for address in rcpts:
                report.digests[address.lower()] += 1
            continue
        parent = str(parsed["In-Reply-To"] or "").strip()
        if not parent:
            report.other_staff.append(subject)
            continue
        if parent not in originals:
            report.unmatched.append(parent)
            continue
        report.replies.setdefault(parent, set()).add(message_id)
    return report


def imap_message_ids(dovecot: Any, user: str) -> dict[str, list[str]]:
    """Message-IDs per folder (INBOX, done, review) of `user`."""
    from imapclient import IMAPClient

    found: dict[str, list[str]] = {}
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=30) as client:
        client.login(user, "secret")
        delimiter = client.namespace().personal[0][1]
        for folder in ("INBOX", DONE, REVIEW):
            name = folder.replace("/", delimiter)
            found[folder] = []
            if not client.folder_exists(name):
                continue
            client.select_folder(name, readonly=True)
            uids = client.search(["ALL"])
            if not uids:
                continue
            fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            for value in fetched.values():
                header = value[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode("ascii", "replace")
                found[folder].append(header.split(":", 1)[1].strip() if ":" in header else "")
    return found


# -- a PostgreSQL server of one's own ---------------------------------------------------------

class PgServer:
    """A PostgreSQL server (tests/servers.py's way) that can be stopped and started again on
    the same port and data folder."""

    def __init__(self) -> None:
        self.folder, self.data, self.port = _start_postgres()
        self.running = True

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://mailbot@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        run = subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
                             capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"pg_ctl {args[-1]} exited {run.returncode}: {run.stderr[-1000:]}")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")
        self.running = False

    def start(self) -> None:
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
                   "-c full_page_writes=off")
        self._ctl("-o", options, "-l", str(self.folder / "log"), "-w", "start")
        self.running = True

    def close(self) -> None:
        if self.running:
            with suppress(Exception):
                self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def own_postgres() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server
    finally:
        server.close()


def scratch_folder(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))

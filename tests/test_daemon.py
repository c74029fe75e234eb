"""`mailbot run` end to end against a real Dovecot: exactly once, nothing lost, crashes included.

Mail is delivered by LMTP into Dovecot; the daemon watches the IMAP inbox, decides each
message and moves it to 「電子保証/処理済」 or 「電子保証/要確認」. The kill test runs the
real console script in a subprocess and sends it SIGKILL at random moments.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from mailbot.config import load_config
from mailbot.daemon import Daemon
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import ledger, mailbox_state, reply_requests, utc

from .configs import issuer_config
from .conftest import TEST_SECRET

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

USER = "keiyaku@issuer.example.jp"
DONE, REVIEW = "電子保証/処理済", "電子保証/要確認"


def notice_mail(i: int, key: str = "Z28YUEAJ38ux") -> bytes:
    message = EmailMessage()
    message["From"] = f"tanto{i % 7}@maru-kensetsu.example.jp"
    message["To"] = USER
    message["Subject"] = f"【電子保証】工事番号R8-{i:03d} 〇〇浄水場△△修繕工事"
    message["Message-ID"] = make_msgid(idstring=f"n{i}", domain="maru-kensetsu.example.jp")
    message.set_content(
        f"〇〇市 契約検査課 御中\n\n保証契約番号：35075-{i:05d}M\n認証キー：{key}\n\n〇〇建設 株式会社\n"
    )
    return message.as_bytes()


@pytest.fixture
def setup(dovecot, tmp_path, monkeypatch, no_system_resolver):
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "secret")
    monkeypatch.setenv("MAILBOT_SECRET", TEST_SECRET.decode())
    url = f"sqlite:///{tmp_path / 'store.db'}"
    path = tmp_path / "mailbot.toml"
    # The kill -9 test runs the daemon in a child process: it asks the tests' DNS server too.
    resolver = f'[auth]\nresolvers = ["{no_system_resolver.address}"]\n'
    path.write_text(issuer_config(url, tmp_path / "spool", imap_port=dovecot.imap_port,
                                  user=USER, extra=resolver), encoding="utf-8")
    store = Store.open(url, secret=TEST_SECRET)
    # Numbers 0–9 are registered with the key the mails carry: those are verified.
    # So are 1000–1199, the kill -9 test's: it is about losing and repeating nothing, and 200
    # failed checks through one envelope sender would be throttled (no reply, by design).
    store.apply([GuaranteeEvent(f"35075-{i:05d}M", "new", "Z28YUEAJ38ux", issuer="〇〇市",
                                source="t") for i in (*range(10), *range(1000, 1200))])
    yield load_config(path), store, path
    store.close()


def server_name(client: IMAPClient, folder: str) -> str:
    """「電子保証/処理済」 as the server spells it (its hierarchy delimiter)."""
    delimiter = client.namespace().personal[0][1]
    return folder.replace("/", delimiter)


def imap_counts(dovecot) -> dict[str, int]:
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login(USER, "secret")
        counts = {}
        for folder in ("INBOX", DONE, REVIEW):
            if client.folder_exists(server_name(client, folder)):
                selected = client.select_folder(server_name(client, folder), readonly=True)
                counts[folder] = selected[b"EXISTS"]
        return counts


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def error_since(store: Store, since: datetime) -> bool:
    """Some mailbox recorded a connection error at or after `since`."""
    with store.engine.connect() as conn:
        times = conn.execute(select(mailbox_state.c.last_error_at)).scalars().all()
    return any(t is not None and utc(t) >= since for t in times)


def ledger_counts(store: Store) -> tuple[int, int, int]:
    """(rows, decided rows with their mailbox action done, reply requests)."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(ledger)).scalar_one()
        done = conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.state.in_(("decided", "replied")), ledger.c.action_state == "done")).scalar_one()
        replies = conn.execute(select(func.count()).select_from(reply_requests)).scalar_one()
    return rows, done, replies


def processing_ids(store: Store) -> set[int]:
    """The rows a process had in hand when it died."""
    with store.engine.connect() as conn:
        return set(conn.execute(select(ledger.c.id).where(ledger.c.state == "processing")).scalars())


def quarantined(store: Store) -> list[str]:
    """The last errors of quarantined rows (none expected: no message was in hand twice)."""
    with store.engine.connect() as conn:
        return list(conn.execute(select(ledger.c.last_error).where(
            ledger.c.state == "quarantined")).scalars())


def still_waiting(store: Store, ids: frozenset[int]) -> bool:
    """Some of `ids` is not decided yet (back in line or in hand again)."""
    if not ids:
        return False
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.id.in_(ids), ledger.c.state.in_(("received", "processing")))).scalar_one() > 0


class Running:
    """The daemon in this process, on its own thread, as `mailbot run` would run it."""

    def __init__(self, config, store, outbox_seconds: float | None = None) -> None:
        self.daemon = Daemon(config, store, workers=1, outbox_seconds=outbox_seconds)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.daemon.start()
        self.daemon.run()

    def __enter__(self) -> Daemon:
        self.thread.start()
        return self.daemon

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop.set()
        self.daemon.news.set()
        self.thread.join(timeout=30)
        self.daemon.shutdown()


def test_delivered_mail_is_decided_once_and_moved(setup, dovecot):
    config, store, _ = setup
    for i in (1, 2, 50):  # 1 and 2 verify, 50 is an unknown number
        dovecot.deliver(USER, notice_mail(i))
    with Running(config, store):
        wait_for(lambda: ledger_counts(store)[1] == 3, 60, "3 decided and moved")
    assert imap_counts(dovecot) == {"INBOX": 0, DONE: 2, REVIEW: 1}
    # Restarting finds nothing new to decide and sends nothing twice.
    with Running(config, store):
        dovecot.deliver(USER, notice_mail(3))
        wait_for(lambda: ledger_counts(store)[1] == 4, 60, "the fourth mail")
    assert ledger_counts(store) == (4, 4, 4)
    assert imap_counts(dovecot) == {"INBOX": 0, DONE: 3, REVIEW: 1}


def test_dovecot_restart_and_uidvalidity_change_under_the_daemon(setup, dovecot):
    config, store, _ = setup
    dovecot.deliver(USER, notice_mail(1))
    with Running(config, store):
        wait_for(lambda: ledger_counts(store)[1] == 1, 60, "the first mail")
        stopped = datetime.now(UTC)
        dovecot.stop()
        # The daemon notices the outage (its watcher records the lost connection) …
        wait_for(lambda: error_since(store, stopped), 60, "the outage recorded")
        dovecot.start()  # … and catches up once the server is back
        for i in (2, 3):
            dovecot.deliver(USER, notice_mail(i))
        wait_for(lambda: ledger_counts(store)[1] == 3, 90, "catching up after the restart")
    # Messages still in the INBOX when UIDVALIDITY changes are neither lost nor repeated.
    for i in (4, 5):
        dovecot.deliver(USER, notice_mail(i))
    dovecot.reset_uidvalidity(USER)
    with Running(config, store):
        wait_for(lambda: ledger_counts(store)[1] == 5, 90, "the mail after the UIDVALIDITY change")
    assert ledger_counts(store) == (5, 5, 5)
    assert imap_counts(dovecot) == {"INBOX": 0, DONE: 5}


def test_kill_9_at_random_moments_loses_and_repeats_nothing(setup, dovecot, tmp_path):
    config, store, path = setup
    total, rounds = 200, 10
    rng = random.Random(20261122)
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode(),
           "MAILBOT_TEST_IMAP_PASSWORD": "secret"}
    command = [sys.executable, "-m", "mailbot.cli", "run", "--config", str(path), "--workers", "1"]
    log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115
    delivered = 0
    in_hand: set[int] = set()
    for _round in range(rounds):
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        batch = total // rounds
        before = ledger_counts(store)[1]
        for i in range(delivered, delivered + batch):
            dovecot.deliver(USER, notice_mail(1000 + i))
        delivered += batch
        # Kill at a random moment once this run is deciding, and only once the message the
        # last kill caught in hand has been decided: three kills with the same message in
        # hand quarantine it by design (MAX_ATTEMPTS), and on a loaded machine a new run can
        # first finish the previous run's mailbox move (the count rises) while its PDF
        # worker is still starting on the recovered message.
        wait_for(lambda before=before, held=frozenset(in_hand):
                 ledger_counts(store)[1] > before and not still_waiting(store, held), 120,
                 "this run deciding mail, the last kill's message first")
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        in_hand = processing_ids(store)
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        wait_for(lambda: ledger_counts(store)[1] == total or bool(quarantined(store)), 240,
                 f"all {total} decided and moved")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert quarantined(store) == []
    rows, done, replies = ledger_counts(store)
    assert (rows, done, replies) == (total, total, total)
    assert imap_counts(dovecot) == {"INBOX": 0, DONE: total}
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login(USER, "secret")
        client.select_folder(server_name(client, DONE), readonly=True)
        fetched = client.fetch(client.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        ids = {v[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].strip() for v in fetched.values()}
    assert len(ids) == total  # every mail once in the folder, none twice

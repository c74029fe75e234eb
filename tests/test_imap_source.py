"""The IMAP watcher against a real Dovecot: sync, \\Seen, actions, UIDVALIDITY, reconnects."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from mailbot.ledger import Ledger, Spool
from mailbot.sources.imap import ImapSettings, ImapWatcher
from mailbot.store.schema import mailbox_state

from .conftest import ISSUER_ADDRESS, MAIL_USERS
from .servers import dovecot_server

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

DONE_FOLDER = "電子保証/処理済"
MAILBOX = "issuer-inbox"


def mail(n: int, subject: str = "【電子保証】工事番号 R8-0{n} 〇〇浄水場修繕工事") -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "〇〇建設 株式会社 <info@maru.example.jp>"
    msg["To"] = ISSUER_ADDRESS
    msg["Subject"] = subject.format(n=n)
    msg["Message-ID"] = f"<test-{n}@maru.example.jp>"
    msg.set_content(f"お世話になっております。〇〇建設です。電子保証の書類 {n} をお送りします。\n")
    return msg.as_bytes()


@pytest.fixture
def ledger(sqlite_ledger):
    return sqlite_ledger


def settings(server, **changes) -> ImapSettings:
    base = ImapSettings(name=MAILBOX, host=server.host, port=server.imap_port,
                        user=ISSUER_ADDRESS, password="secret", tls="none", timeout_seconds=10)
    return replace(base, **changes)


@pytest.fixture
def watcher(dovecot, ledger):
    made = ImapWatcher(settings(dovecot), ledger)
    yield made
    made.close()


@contextmanager
def imap(server) -> Iterator[IMAPClient]:
    client = IMAPClient(server.host, server.imap_port, ssl=False, timeout=10)
    client.login(ISSUER_ADDRESS, "secret")
    try:
        yield client
    finally:
        client.logout()


def message_ids(server, folder: str = "INBOX") -> set[str]:
    with imap(server) as client:
        client.select_folder(folder, readonly=True)
        found = client.fetch(client.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    return {v[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip()
            for v in found.values()}


def decide(ledger: Ledger, actions: dict[str, str | None]) -> dict[str, int]:
    """Claim every received row and decide it with the action for its Message-ID."""
    ids = {}
    while (entry := ledger.claim(now=datetime.now(UTC))) is not None:
        ids[entry.message_id] = entry.id
        ledger.decide(entry.id, {"outcomes": ["verified"]}, None,
                      actions.get(entry.message_id))
    return ids


def wait_for(check, seconds: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - started


@contextmanager
def running(watcher: ImapWatcher) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive(), "run() did not notice stop"


def rows(ledger: Ledger, mailbox: str = MAILBOX):
    return [e for e in ledger.entries() if e.mailbox == mailbox]


def last_error(store) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(select(mailbox_state.c.last_error)
                            .where(mailbox_state.c.mailbox == MAILBOX)).scalar()


def test_sync_takes_each_message_once_without_setting_seen(dovecot, ledger, watcher):
    for n in range(5):
        dovecot.deliver(ISSUER_ADDRESS, mail(n))
    counted = []
    watcher.on_new = counted.append
    assert watcher.sync_once() == 5
    assert watcher.sync_once() == 0
    assert sum(counted) == 5
    entries = rows(ledger)
    assert sorted(e.uid for e in entries) == [1, 2, 3, 4, 5]
    assert {e.message_id for e in entries} == {f"<test-{n}@maru.example.jp>" for n in range(5)}
    assert ledger.mailbox_state(MAILBOX) == (entries[0].uidvalidity, 5)
    # A first sync is a backfill, but mail that came in within a day still gets its answer.
    assert all(e.reply_wanted for e in entries)
    dovecot.deliver(ISSUER_ADDRESS, mail(5))
    assert watcher.sync_once() == 1
    assert rows(ledger)[-1].reply_wanted
    with imap(dovecot) as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search(["ALL"]))
    assert len(flags) == 6
    assert not any(b"\\Seen" in f for f in flags.values())


def test_actions_move_to_japanese_folder_and_set_keyword(dovecot, ledger, watcher):
    for n in range(4):
        dovecot.deliver(ISSUER_ADDRESS, mail(n))
    watcher.sync_once()
    ids = decide(ledger, {"<test-0@maru.example.jp>": f"move:{DONE_FOLDER}",
                          "<test-1@maru.example.jp>": "keyword:$MailbotChecked",
                          "<test-2@maru.example.jp>": f"move:{DONE_FOLDER}"})
    with imap(dovecot) as client:  # the clerk deletes test-2 before mailbot acts
        client.select_folder("INBOX")
        client.delete_messages([3])
        client.expunge()
        assert not client.folder_exists("電子保証.処理済")
    assert watcher.apply_actions() == 3
    assert watcher.apply_actions() == 0
    assert all(ledger.get(i).action_state == "done" for i in ids.values() if ledger.get(i).action)
    assert message_ids(dovecot) == {"<test-1@maru.example.jp>", "<test-3@maru.example.jp>"}
    assert message_ids(dovecot, "電子保証.処理済") == {"<test-0@maru.example.jp>"}
    with imap(dovecot) as client:
        assert "電子保証.処理済" in {name for _, _, name in client.list_sub_folders()}
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags([2, 4])
    assert b"$MailbotChecked" in flags[2] and b"$MailbotChecked" not in flags[4]
    assert not any(b"\\Seen" in f for f in flags.values())


def test_uidvalidity_change_resyncs_without_duplicates(dovecot, ledger, watcher):
    for n in range(6):
        dovecot.deliver(ISSUER_ADDRESS, mail(n))
    assert watcher.sync_once() == 6
    old_uidvalidity = rows(ledger)[0].uidvalidity
    with imap(dovecot) as client:  # message 0 goes away: the new UIDs shift down by one
        client.select_folder("INBOX")
        client.delete_messages([1])
        client.expunge()
    ids = decide(ledger, {"<test-3@maru.example.jp>": f"move:{DONE_FOLDER}",
                          "<test-0@maru.example.jp>": "keyword:$MailbotChecked"})
    new_uidvalidity = dovecot.reset_uidvalidity(ISSUER_ADDRESS)
    assert new_uidvalidity != old_uidvalidity
    assert watcher.sync_once() == 0  # the old connection died with the restart: reconnected
    assert len(rows(ledger)) == 6
    moved = ledger.get(ids["<test-3@maru.example.jp>"])
    assert (moved.uidvalidity, moved.uid, moved.action_state) == (new_uidvalidity, 3, "done")
    assert ledger.get(ids["<test-0@maru.example.jp>"]).action_state == "done"  # gone
    assert ledger.mailbox_state(MAILBOX) == (new_uidvalidity, 5)
    assert message_ids(dovecot, "電子保証.処理済") == {"<test-3@maru.example.jp>"}
    assert message_ids(dovecot) == {f"<test-{n}@maru.example.jp>" for n in (1, 2, 4, 5)}
    dovecot.deliver(ISSUER_ADDRESS, mail(6))
    assert watcher.sync_once() == 1
    assert rows(ledger)[-1].reply_wanted  # not backfill: the mailbox was already known


def test_run_reconnects_after_server_restart(dovecot, ledger, sqlite_store):
    watcher = ImapWatcher(settings(dovecot), ledger)
    with running(watcher):
        wait_for(lambda: ledger.mailbox_state(MAILBOX)[0] is not None, 10)
        dovecot.stop()
        wait_for(lambda: last_error(sqlite_store) is not None, 10)
        dovecot.start()
        for n in range(3):
            dovecot.deliver(ISSUER_ADDRESS, mail(n))
        wait_for(lambda: len(rows(ledger)) == 3, 15)
    assert "EOF" in last_error(sqlite_store) or "refused" in last_error(sqlite_store)


def test_run_idle_notices_new_mail(dovecot, ledger):
    watcher = ImapWatcher(settings(dovecot, poll_seconds=600), ledger)
    with running(watcher):
        wait_for(lambda: ledger.mailbox_state(MAILBOX)[0] is not None, 10)
        dovecot.deliver(ISSUER_ADDRESS, mail(1))
        assert wait_for(lambda: len(rows(ledger)) == 1, 5) < 5
        ids = decide(ledger, {"<test-1@maru.example.jp>": f"move:{DONE_FOLDER}"})
        watcher.wake()  # what the daemon does after a decision
        wait_for(lambda: ledger.get(ids["<test-1@maru.example.jp>"]).action_state == "done", 5)
    assert message_ids(dovecot) == set()


def test_first_sync_since_takes_only_newer_messages(dovecot, ledger):
    now = datetime.now(UTC)
    with imap(dovecot) as client:
        for n in (1, 2):  # after `since` but days old: history, decided without a reply
            client.append("INBOX", mail(n), msg_time=now - timedelta(days=3))
        for n in (3, 4):  # older mail, appended last: higher UIDs than the new ones
            client.append("INBOX", mail(n), msg_time=datetime(2024, 3, 1, 9, 0, tzinfo=UTC))
    since = date(2025, 1, 1)
    watcher = ImapWatcher(settings(dovecot, since=since), ledger)
    try:
        assert watcher.sync_once() == 2
        assert {e.message_id: e.reply_wanted for e in rows(ledger)} == {
            "<test-1@maru.example.jp>": False, "<test-2@maru.example.jp>": False}
        dovecot.deliver(ISSUER_ADDRESS, mail(5))
        assert watcher.sync_once() == 1
        assert {e.message_id: e.reply_wanted for e in rows(ledger)}["<test-5@maru.example.jp>"]
    finally:
        watcher.close()
    answering = ImapWatcher(settings(dovecot, name="answering", since=since,
                                     reply_to_backfill=True), ledger)
    try:
        assert answering.sync_once() == 3
        assert all(e.reply_wanted for e in rows(ledger, "answering"))
    finally:
        answering.close()


def test_without_idle_and_move_polls_and_copies(ledger):
    with dovecot_server(MAIL_USERS, imap_capability="IMAP4rev1 LITERAL+ UIDPLUS") as server:
        watcher = ImapWatcher(settings(server, poll_seconds=0.5), ledger)
        with running(watcher):
            wait_for(lambda: ledger.mailbox_state(MAILBOX)[0] is not None, 10)
            server.deliver(ISSUER_ADDRESS, mail(1))
            server.deliver(ISSUER_ADDRESS, mail(2))
            wait_for(lambda: len(rows(ledger)) == 2, 5)
            ids = decide(ledger, {"<test-1@maru.example.jp>": f"move:{DONE_FOLDER}"})
            watcher.wake()
            wait_for(lambda: ledger.get(ids["<test-1@maru.example.jp>"]).action_state == "done", 5)
        assert message_ids(server) == {"<test-2@maru.example.jp>"}  # copied, then UID EXPUNGE
        assert message_ids(server, "電子保証.処理済") == {"<test-1@maru.example.jp>"}


def test_byte_identical_copies_are_two_rows_and_both_are_moved(dovecot, ledger, watcher):
    raw = mail(1)
    with imap(dovecot) as client:  # e.g. a mail program that appended the message twice
        client.append("INBOX", raw)
        client.append("INBOX", raw)
    dovecot.deliver(ISSUER_ADDRESS, mail(2))
    assert watcher.sync_once() == 3
    assert watcher.sync_once() == 0
    copies = [e for e in rows(ledger) if e.message_id == "<test-1@maru.example.jp>"]
    assert sorted(e.uid for e in copies) == [1, 2] and copies[0].sha256 == copies[1].sha256
    while (entry := ledger.claim(now=datetime.now(UTC))) is not None:
        ledger.decide(entry.id, {"outcomes": []}, None, f"move:{DONE_FOLDER}")
    assert watcher.apply_actions() == 3
    assert message_ids(dovecot) == set()
    with imap(dovecot) as client:
        assert client.select_folder("電子保証.処理済", readonly=True)[b"EXISTS"] == 3


def test_uidvalidity_change_finds_copies_again_and_a_moved_back_mail_anew(dovecot, ledger,
                                                                          watcher):
    raw = mail(1)
    with imap(dovecot) as client:
        client.append("INBOX", raw)
        client.append("INBOX", raw)
    dovecot.deliver(ISSUER_ADDRESS, mail(2))
    assert watcher.sync_once() == 3
    ids = decide(ledger, {"<test-2@maru.example.jp>": f"move:{DONE_FOLDER}"})
    watcher.apply_actions()
    assert message_ids(dovecot) == {"<test-1@maru.example.jp>"}
    with imap(dovecot) as client:  # the clerk puts the filed mail back into the inbox
        client.select_folder("電子保証.処理済")
        client.move(client.search(["ALL"]), "INBOX")
    new_uidvalidity = dovecot.reset_uidvalidity(ISSUER_ADDRESS)
    # The two copies still in the folder keep their rows (nothing is decided twice); the
    # mail we had moved out and that came back is a new row, to be decided again.
    assert watcher.sync_once() == 1
    entries = rows(ledger)
    assert len(entries) == 4
    assert all(e.uidvalidity == new_uidvalidity for e in entries if e.id != ids[
        "<test-2@maru.example.jp>"])
    assert sorted(e.message_id for e in entries if e.state == "received") == [
        "<test-2@maru.example.jp>"]
    assert ledger.get(ids["<test-2@maru.example.jp>"]).action_state == "done"


class DeliveringLedger(Ledger):
    """A real ledger that has one mail delivered while the watcher is between its SEARCH
    and IDLE (when it records the folder's state): the server then announces the mail in
    the answer to the watcher's next command, not in IDLE."""

    def __init__(self, engine, spool, server) -> None:
        super().__init__(engine, spool)
        self.server = server
        self.pending = [mail(1)]

    def set_mailbox_state(self, *args, **kwargs) -> None:
        super().set_mailbox_state(*args, **kwargs)
        if self.pending:
            self.server.deliver(ISSUER_ADDRESS, self.pending.pop())


def test_mail_announced_between_sync_and_idle_is_not_left_for_the_next_renewal(
        dovecot, sqlite_store, tmp_path):
    ledger = DeliveringLedger(sqlite_store.engine, Spool(tmp_path / "spool"), dovecot)
    watcher = ImapWatcher(settings(dovecot, idle_renew_seconds=600), ledger)
    with running(watcher):
        # Without looking at what the server said before IDLE, this waits for the renewal.
        wait_for(lambda: len(rows(ledger)) == 1, 20)
    assert not ledger.pending

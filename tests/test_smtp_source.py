"""The SMTP/LMTP intake listener: a real aiosmtpd server on loopback, real smtplib clients,
a SQLite ledger in tmp_path. 250 only once the row is committed; real failures give 451."""

from __future__ import annotations

import logging
import shutil
import smtplib
import socket
import sqlite3
from email.header import Header

import pytest
from sqlalchemy import event

from mailbot.sources.smtp import IntakeListener, ListenerSettings

HOST = "127.0.0.1"
MAILBOXES = {
    "Hoshou@Example.jp": "guarantees",
    "uketsuke@example.jp": "guarantees",
    "keiyaku@example.jp": "contracts",
}
SENDER = "keiri@example.jp"


def notice(tag: str = "1") -> bytes:
    """A submission as a Japanese mail client sends it: ISO-2022-JP and 8-bit UTF-8 parts,
    CRLF line ends and a body line starting with "." (dot-stuffed on the wire)."""
    subject = Header(f"保証契約の確認（〇〇建設）{tag}", "iso-2022-jp").encode()
    iso = "〇〇建設 株式会社 御中\r\n保証契約番号 35075-00001M の確認をお願いします。\r\n"
    utf8 = "認証キー Z28Y********\r\n.ドットで始まる行\r\n〇〇浄水場△△修繕工事\r\n"
    return b"\r\n".join([
        "From: 〇〇建設 経理 <keiri@example.jp>".encode(),
        b"To: hoshou@example.jp",
        b"Subject: " + subject.encode("ascii"),
        f"Message-ID: <{tag}.notice@example.jp>".encode(),
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="b1"',
        b"",
        b"--b1",
        b"Content-Type: text/plain; charset=ISO-2022-JP",
        b"Content-Transfer-Encoding: 7bit",
        b"",
        iso.encode("iso-2022-jp"),
        b"--b1",
        b"Content-Type: text/plain; charset=UTF-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        utf8.encode("utf-8"),
        b"--b1--",
        b"",
    ])


@pytest.fixture
def store(sqlite_store):
    return sqlite_store


@pytest.fixture
def ledger(sqlite_ledger):
    return sqlite_ledger


@pytest.fixture
def new_rows():
    return []


@pytest.fixture
def listen(ledger, new_rows):
    started: list[IntakeListener] = []

    def start(**overrides) -> IntakeListener:
        overrides.setdefault("port", 0)
        overrides.setdefault("mailboxes", MAILBOXES)
        listener = IntakeListener(ListenerSettings(**overrides), ledger, on_new=new_rows.append)
        listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()


def smtp_send(port: int, msg: bytes, rcpts=("hoshou@example.jp",)) -> tuple[int, bytes]:
    """One SMTP transaction with 8BITMIME + SMTPUTF8; the reply to the final "."."""
    with smtplib.SMTP(HOST, port, timeout=30) as client:
        client.ehlo()
        assert client.mail("経理@example.jp", ["BODY=8BITMIME", "SMTPUTF8"])[0] == 250
        for rcpt in rcpts:
            assert client.rcpt(rcpt)[0] == 250
        return client.data(msg)


def lmtp_send(port: int, msg: bytes, rcpts) -> tuple[list[str], list[tuple[int, bytes]]]:
    """One LMTP transaction read the RFC 2033 way: after the final "." one reply per
    accepted recipient (smtplib.LMTP.sendmail reads only the first, cpython#76984).
    Returns the accepted recipients and the DATA replies; checks the session is in step."""
    with smtplib.LMTP(HOST, port, timeout=30) as client:
        client.ehlo()  # LHLO
        assert client.mail(SENDER, ["BODY=8BITMIME"])[0] == 250
        accepted = [rcpt for rcpt in rcpts if client.rcpt(rcpt)[0] == 250]
        replies = [client.data(msg)]
        replies += [client.getreply() for _ in accepted[1:]]
        assert client.noop() == (250, b"OK")  # no reply left over or missing
        return accepted, replies


# -- (a) SMTP ------------------------------------------------------------------------------
def test_smtp_8bit_mail_is_spooled_byte_for_byte_then_acknowledged(listen, ledger, new_rows):
    listener = listen()
    msg = notice()
    with smtplib.SMTP(HOST, listener.port, timeout=30) as client:
        client.ehlo()
        assert client.has_extn("8bitmime") and client.has_extn("smtputf8")
        assert client.mail("経理@example.jp", ["BODY=8BITMIME", "SMTPUTF8"])[0] == 250
        assert client.rcpt("HOSHOU@example.JP")[0] == 250  # case-insensitive
        code, reply = client.data(msg)
    assert code == 250, reply
    [entry] = ledger.entries()
    assert reply.decode().endswith(f"ledger {entry.id}")
    assert (entry.mailbox, entry.state) == ("guarantees", "received")
    # Dot-unstuffed; only the envelope sender is recorded in front, as a final delivery does,
    # and the listener's trace header (the client's address and HELO), with no date.
    trace = f"X-Mailbot-Client: ip=127.0.0.1; helo={client.local_hostname}; protocol=SMTP\r\n"
    assert ledger.raw(entry) == ("Return-Path: <経理@example.jp>\r\n" + trace).encode() + msg
    assert entry.message_id == "<1.notice@example.jp>"
    assert new_rows == [1]


def test_smtp_unknown_recipient_is_refused_at_rcpt(listen, ledger):
    listener = listen()
    with smtplib.SMTP(HOST, listener.port, timeout=30) as client:
        client.ehlo()
        client.mail(SENDER)
        assert client.rcpt("nobody@example.jp")[0] == 550
        client.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(SENDER, ["nobody@example.jp"], notice())
        assert refused.value.recipients["nobody@example.jp"][0] == 550
        # A known recipient next to an unknown one: the message goes to the known one only.
        assert client.sendmail(SENDER, ["nobody@example.jp", "keiyaku@example.jp"], notice()) == {
            "nobody@example.jp": (550, b"5.1.1 Recipient address rejected: user unknown")
        }
    assert [e.mailbox for e in ledger.entries()] == ["contracts"]


def test_smtp_default_mailbox_takes_unlisted_recipients(listen, ledger):
    listener = listen(default_mailbox="catch-all")
    assert smtp_send(listener.port, notice(), rcpts=["someone@example.jp"])[0] == 250
    assert [e.mailbox for e in ledger.entries()] == ["catch-all"]


def test_smtp_oversize_message_gets_552(listen, ledger):
    listener = listen(max_message_bytes=2000)
    big = notice() + b"X" * 3000 + b"\r\n"
    with smtplib.SMTP(HOST, listener.port, timeout=30) as client:
        client.ehlo()
        assert client.has_extn("size") and client.esmtp_features["size"] == "2000"
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # SIZE= at MAIL FROM
            client.sendmail(SENDER, ["hoshou@example.jp"], big)
        assert refused.value.smtp_code == 552
        client.mail(SENDER)  # no SIZE announced: refused after DATA
        client.rcpt("hoshou@example.jp")
        assert client.data(big)[0] == 552
        assert client.sendmail(SENDER, ["hoshou@example.jp"], notice()) == {}  # still in step
    assert len(ledger.entries()) == 1


def test_two_mailboxes_in_one_smtp_transaction(listen, ledger, new_rows):
    listener = listen()
    msg = notice()
    rcpts = ["hoshou@example.jp", "uketsuke@example.jp", "keiyaku@example.jp"]
    assert smtp_send(listener.port, msg, rcpts)[0] == 250
    assert sorted(e.mailbox for e in ledger.entries()) == ["contracts", "guarantees"]
    assert new_rows == [2]


# -- (b) a sender's retry ------------------------------------------------------------------
def test_resent_message_is_one_ledger_row(listen, ledger, new_rows):
    listener = listen()
    msg = notice()
    first = smtp_send(listener.port, msg)
    again = smtp_send(listener.port, msg)
    assert first == again and first[0] == 250  # the same row acknowledged twice
    assert len(ledger.entries()) == 1
    assert new_rows == [1]
    assert smtp_send(listener.port, notice("2"))[0] == 250  # other bytes: a new row
    assert len(ledger.entries()) == 2


# -- (c) the spool fails for real -----------------------------------------------------------
def test_spool_failure_answers_451_and_records_nothing(listen, ledger, tmp_path, caplog):
    listener = listen()
    spool = tmp_path / "spool"
    shutil.rmtree(spool)
    spool.write_bytes(b"")  # a file where the folder should be: mkdir/mkstemp fail, even as root
    msg = notice()
    caplog.set_level(logging.INFO, logger="mailbot.sources.smtp")
    with smtplib.SMTP(HOST, listener.port, timeout=30) as client:
        with pytest.raises(smtplib.SMTPDataError) as failed:
            client.sendmail(SENDER, ["hoshou@example.jp"], msg)
    assert failed.value.smtp_code == 451
    assert failed.value.smtp_error.startswith(b"4.3.0 ")
    assert ledger.entries() == []
    assert "could not record" in caplog.text and "NotADirectoryError" in caplog.text
    assert "〇〇" not in caplog.text and "35075" not in caplog.text  # no message content logged

    spool.unlink()
    spool.mkdir()  # repaired: the sender's retry is accepted, once
    assert smtp_send(listener.port, msg)[0] == 250
    [entry] = ledger.entries()
    assert ledger.raw(entry).split(b"\r\n", 2)[2] == msg  # after Return-Path and the trace


# -- (d) the database fails for real ---------------------------------------------------------
def test_database_locked_answers_451_and_records_nothing(listen, ledger, store, tmp_path,
                                                         caplog):
    # Another process holds SQLite's write lock (a backup, a long migration). Our connections
    # wait 0.3 s instead of the store's 10 s before giving up with "database is locked".
    event.listen(store.engine, "connect",
                 lambda dbapi, _record: dbapi.execute("PRAGMA busy_timeout=300"))
    store.engine.dispose()
    listener = listen()
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    msg = notice()
    try:
        with smtplib.SMTP(HOST, listener.port, timeout=30) as client:
            with pytest.raises(smtplib.SMTPDataError) as failed:
                client.sendmail(SENDER, ["hoshou@example.jp"], msg)
        assert failed.value.smtp_code == 451
        assert "OperationalError: database is locked" in caplog.text
    finally:
        blocker.rollback()
        blocker.close()
    assert ledger.entries() == []

    assert smtp_send(listener.port, msg)[0] == 250  # lock gone: the retry is recorded once
    [entry] = ledger.entries()
    assert ledger.raw(entry).split(b"\r\n", 2)[2] == msg  # after Return-Path and the trace


# -- (e) LMTP -----------------------------------------------------------------------------
def test_lmtp_one_reply_per_recipient_and_one_row_per_mailbox(listen, ledger, new_rows):
    listener = listen(lmtp=True)
    msg = notice()
    accepted, replies = lmtp_send(
        listener.port, msg,
        ["hoshou@example.jp", "nobody@example.jp", "keiyaku@example.jp", "uketsuke@example.jp"],
    )
    assert accepted == ["hoshou@example.jp", "keiyaku@example.jp", "uketsuke@example.jp"]
    assert [code for code, _ in replies] == [250, 250, 250]
    rows = {e.mailbox: e for e in ledger.entries()}
    assert sorted(rows) == ["contracts", "guarantees"]
    assert all(ledger.raw(e).split(b"\r\n", 2)[2] == msg for e in rows.values())
    # The same mailbox gets the same answer: recipients 1 and 3 both name the guarantees row.
    assert replies[0] == replies[2] == (250, f"2.0.0 OK: ledger {rows['guarantees'].id}".encode())
    assert replies[1] == (250, f"2.0.0 OK: ledger {rows['contracts'].id}".encode())
    assert new_rows == [2]


def test_lmtp_sendmail_reports_the_refused_recipient(listen, ledger):
    listener = listen(lmtp=True)
    with smtplib.LMTP(HOST, listener.port, timeout=30) as client:
        refused = client.sendmail(SENDER, ["keiyaku@example.jp", "nobody@example.jp"], notice())
        assert refused == {
            "nobody@example.jp": (550, b"5.1.1 Recipient address rejected: user unknown")
        }
        assert client.sendmail(SENDER, ["hoshou@example.jp"], notice("2")) == {}
        assert client.noop() == (250, b"OK")
    assert sorted(e.mailbox for e in ledger.entries()) == ["contracts", "guarantees"]


def test_lmtp_failure_is_answered_for_every_recipient(listen, ledger, tmp_path):
    listener = listen(lmtp=True)
    spool = tmp_path / "spool"
    shutil.rmtree(spool)
    spool.write_bytes(b"")
    rcpts = ["hoshou@example.jp", "keiyaku@example.jp"]
    _, replies = lmtp_send(listener.port, notice(), rcpts)
    assert [code for code, _ in replies] == [451, 451]
    assert ledger.entries() == []
    spool.unlink()
    spool.mkdir()
    _, replies = lmtp_send(listener.port, notice(), rcpts)
    assert [code for code, _ in replies] == [250, 250]
    assert len(ledger.entries()) == 2


@pytest.mark.parametrize(
    ("msg", "code"),
    [
        (notice() + (b"X" * 70 + b"\r\n") * 40, 552),
        (b"Subject: x\r\n\r\n" + b"Y" * 1500 + b"\r\n", 500),
    ],
    ids=["too-much-data", "line-too-long"],
)
def test_lmtp_refusal_after_data_is_repeated_per_recipient(listen, ledger, msg, code):
    listener = listen(lmtp=True, max_message_bytes=2500, line_length_limit=1000)
    _, replies = lmtp_send(listener.port, msg, ["hoshou@example.jp", "keiyaku@example.jp"])
    assert [c for c, _ in replies] == [code, code]
    assert ledger.entries() == []


# -- (f) stop and start --------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def test_stop_releases_the_port_and_start_serves_again(ledger, new_rows):
    port = free_port()
    listener = IntakeListener(ListenerSettings(port=port, mailboxes=MAILBOXES), ledger)
    listener.start()
    try:
        assert listener.port == port
        with pytest.raises(RuntimeError):
            listener.start()
        idle = smtplib.SMTP(HOST, port, timeout=30)  # a client still connected at stop()
        idle.ehlo()
        assert smtp_send(port, notice())[0] == 250
    finally:
        listener.stop()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        idle.noop()
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=5)
    with socket.socket() as rebind:  # nobody listens there any more
        rebind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rebind.bind((HOST, port))
        rebind.listen()
    listener.start()
    try:
        assert listener.port == port
        assert smtp_send(port, notice("2"))[0] == 250
    finally:
        listener.stop()
    listener.stop()  # a second stop is harmless
    assert len(ledger.entries()) == 2


def test_port_zero_picks_a_free_port_and_a_taken_port_fails_start(listen, ledger):
    listener = listen()
    assert listener.port not in (0, 8025)
    clash = IntakeListener(ListenerSettings(port=listener.port), ledger)
    with pytest.raises(OSError):
        clash.start()
    assert smtp_send(listener.port, notice())[0] == 250  # the first one is unharmed


def test_a_bounce_is_recorded_with_its_null_sender(listen, ledger):
    listener = listen()
    with smtplib.SMTP(HOST, listener.port, timeout=30) as client:
        client.sendmail("", ["hoshou@example.jp"], notice())
    [entry] = ledger.entries()
    assert ledger.raw(entry).startswith(b"Return-Path: <>\r\n")

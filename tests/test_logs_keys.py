"""No 認証キー in any log line of a whole `mailbot run`, in JSON and in text.

`mailbot run --log-format json|text --log-level DEBUG` runs as its own process with an LMTP
listener and a real relay (aiosmtpd). It is sent every sample mail (notices in PDFs, zips,
typed bodies, full-width values …) and a hostile campaign made from them, against a store
where some notices match, some have the wrong key, some differ in the project's name and some
are unknown; one message is left for a mailbox that is no longer configured, so it is
quarantined with its traceback. Every line of stderr is then read: in JSON each must be an
object with timestamp, level, logger and message, and no line may hold any key in any form
(as written, full-width, split by spaces or hyphens, any case).
"""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import unicodedata

import pytest
from sqlalchemy import func, select

from mailbot.config import load_config
from mailbot.ledger import Ledger, Spool
from mailbot.samples.catalog import all_samples
from mailbot.samples.hostile import hostile_mails
from mailbot.samples.notice_pdf import to_fullwidth
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import ledger, outbox, reply_requests

from .configs import issuer_config
from .conftest import TEST_SECRET
from .dns_server import dns_server
from .servers import free_port

SMTP = """
[smtp]
host = "127.0.0.1"
port = {port}
from = "keiyaku@issuer.example.jp"
flush_seconds = 1
[send_window]
immediate = ["confirmation", "discrepancy"]
[digest]
enabled = false
"""
INBOX = "keiyaku@issuer.example.jp"
FINAL = ("decided", "replied", "quarantined")


def _events(mails: list) -> tuple[list[GuaranteeEvent], set[str]]:
    """Guarantees for the mails' notices (right key, wrong key, other project, none) and
    every key that the mails or the store hold."""
    events, keys, seen = [], set(), set()
    for sample in mails:
        for notice in sample.expected["notices"]:
            keys.add(notice["auth_key"])
            number = notice["guarantee_number"]
            if number in seen:
                continue
            turn = len(seen) % 4
            seen.add(number)
            if turn == 3:
                continue  # unknown to the store
            key = notice["auth_key"] if turn != 1 else "Wr0ngKey" + number[-4:].replace("-", "")
            keys.add(key)
            events.append(GuaranteeEvent(
                number, "new", key, issuer="〇〇市", kind=notice["kind"],
                contractor=notice["contractor"],
                project_name=notice["project_name"] if turn != 2 else "〇〇地区△△改良工事",
                source="test"))
    return events, keys


def _forms(key: str) -> set[str]:
    return {key.lower(), to_fullwidth(key).lower()}


def _leaks(line: str, keys: set[str]) -> set[str]:
    """The keys `line` holds in any form: folded (NFKC) and with spaces and hyphens gone."""
    texts = {line}
    try:
        texts.add(json.dumps(json.loads(line), ensure_ascii=False))  # \\u escapes undone
    except ValueError:
        pass
    folded = set()
    for text in texts:
        for form in (text, unicodedata.normalize("NFKC", text)):
            folded |= {form.lower(), re.sub(r"[\s\-‐－ー_]", "", form).lower()}
    return {key for key in keys for form in _forms(key) if any(form in t for t in folded)}


def _settled(store: Store, rows: int) -> bool:
    with store.engine.connect() as conn:
        final = conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.state.in_(FINAL))).scalar_one()
        waiting = conn.execute(select(func.count()).select_from(reply_requests).where(
            reply_requests.c.state == "stored")).scalar_one()
        queued = conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.state == "queued")).scalar_one()
    return final == rows and waiting == 0 and queued == 0


def _statuses(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        texts = conn.execute(select(ledger.c.decision).where(
            ledger.c.decision.is_not(None))).scalars().all()
    return {json.loads(text).get("status") for text in texts}


@pytest.fixture
def dns():
    """The daemon's resolver: a real DNS server on loopback that knows none of the senders'
    domains (NXDOMAIN at once). Without it the daemon would ask the machine's resolver, and
    a machine without network answers with timeouts: `temperror`, the mail held for retry."""
    with dns_server() as server:
        yield server


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_whole_run_logs_no_key(log_format, tmp_path, sink, dns):
    mails = [s for s in all_samples() if s.filename.endswith(".eml")]
    hostile = list(hostile_mails(24, seed=13))
    events, keys = _events(mails)
    assert len(keys) > 20 and all(len(k) >= 8 for k in keys)

    port = free_port()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    path = tmp_path / "mailbot.toml"
    text = issuer_config(url, tmp_path / "spool",
                         extra=f'[auth]\nresolvers = ["{dns.address}"]\n'
                         ).replace("127.0.0.1:0", f"127.0.0.1:{port}")
    path.write_text(SMTP.format(port=sink.settings.port) + text, encoding="utf-8")
    store = Store.open(url, secret=TEST_SECRET)
    store.apply(events)
    # A message for a mailbox no longer in the configuration fails until it is quarantined.
    Ledger(store.engine, Spool(load_config(path).spool_dir)).receive("retired", mails[0].data)

    stderr = tmp_path / "stderr.log"
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailbot.cli", "--log-format", log_format,
             "--log-level", "DEBUG", "run", "--config", str(path), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        client = _connect(port, proc)
        with client:
            for mail in [*mails, *hostile]:
                try:
                    client.sendmail("tanto@maru.example.jp", [INBOX], mail.data)
                except smtplib.SMTPException:
                    pass  # a hostile mail may be refused; what matters is what was logged
        with store.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(ledger)).scalar_one()
        assert rows > len(mails)
        deadline = time.monotonic() + 300
        while not _settled(store, rows):
            assert proc.poll() is None, stderr.read_text(encoding="utf-8")[-3000:]
            assert time.monotonic() < deadline, stderr.read_text(encoding="utf-8")[-3000:]
            time.sleep(0.2)
        statuses = _statuses(store)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        store.close()
    assert proc.returncode == 0
    # The run went through what it should: matches, discrepancies, a quarantine, replies.
    assert {"verified", "discrepancy"} <= statuses, statuses
    assert sink.accepted

    lines = stderr.read_text(encoding="utf-8").splitlines()
    assert len(lines) > rows  # at least one line per received message and per decision
    leaks = {i: _leaks(line, keys) for i, line in enumerate(lines)}
    assert {i: found for i, found in leaks.items() if found} == {}
    if log_format == "json":
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        assert all({"timestamp", "level", "logger", "message"} <= r.keys() for r in records)
        decisions = [r for r in records if r["logger"] == "mailbot.decision"]
        assert len(decisions) >= len(mails)
        assert all(r["message"] == "decision" and isinstance(r["ledger_id"], int)
                   and r["mailbox"] == "keiyaku" and "status" in r for r in decisions)
        received = [r for r in records if r["logger"] == "mailbot.sources.smtp"
                    and "ledger_id" in r]
        assert len(received) == rows - 1  # the quarantined one was not delivered by LMTP
        assert any(r["logger"] == "mailbot.daemon" and r["level"] == "ERROR"
                   and r["mailbox"] == "retired" for r in records)
        assert any(r["logger"] == "mailbot.outbox" and "outbox_id" in r for r in records)
    else:
        decisions = [line for line in lines if " INFO mailbot.decision: {" in line]
        assert len(decisions) >= len(mails)
        assert all(json.loads(line.split(": ", 1)[1])["ledger_id"] for line in decisions)


def _connect(port: int, proc: subprocess.Popen) -> smtplib.LMTP:
    """An LMTP client once the daemon's listener answers."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "mailbot run exited before listening"
        try:
            return smtplib.LMTP("127.0.0.1", port, timeout=60)
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.1)

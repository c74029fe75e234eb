"""Text from a mail reaches no database column with a NUL or a lone surrogate (issue 10 §5).

PostgreSQL refuses NUL in text ("PostgreSQL text fields cannot contain NUL"), and neither
driver encodes a lone surrogate; a sender's headers carry both. On SQLite and PostgreSQL:
the ledger records such a mail (and the LMTP listener answers 250, not 451), a decision and
a reply request holding them are stored, lookups with them find what was stored, and the
throttle takes an overlong hostile sender. Also the bounds on what an answer's headers and
text may turn into (Message-IDs to look up, numbers, the excerpt for staff).
"""

from __future__ import annotations

import json
import re
import smtplib
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from mailbot.ledger import Ledger, ReplyRequest, Spool
from mailbot.sources.smtp import IntakeListener, ListenerSettings
from mailbot.store.dbtext import db_text
from mailbot.store.schema import ledger as ledger_table
from mailbot.store.schema import reply_requests, submissions
from mailbot.submit.track import MAX_NUMBERS, MAX_REFERENCES, read_answer, referenced_ids

NUL_MAIL = (
    b"From: \"\x00\xed\xa0\x80\" <tanto\x00@maru-kensetsu.example.jp>\r\n"
    b"To: keiyaku@issuer.example.jp\r\n"
    b"Subject: =?utf-8?b?AGE=?= \xe3\x80\x90\x00\xed\xa0\x80\r\n"
    b"Message-ID: <nul\x00.1@maru-kensetsu.example.jp>\r\n"
    b"\r\n"
    b"body\x00\r\n"
)
UNSAFE = re.compile("[\x00\ud800-\udfff]")


def safe(value: str | None) -> bool:
    return value is None or not UNSAFE.search(value)


def test_db_text_replaces_what_no_database_takes_and_keeps_values_apart():
    assert db_text("<a\x00b@x>") == "<a\ufffdb@x>" != db_text("<ab@x>")
    assert db_text("件名\udce5\ud800") == "件名\ufffd\ufffd"
    assert db_text("plain") == "plain" and db_text(None) is None
    assert db_text("a" * 400, 320) == "a" * 320


def test_the_ledger_records_a_mail_with_nul_and_surrogates_in_its_headers(store, tmp_path):
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    receipt = ledger.receive("keiyaku", NUL_MAIL)
    assert receipt.new
    entry = ledger.get(receipt.id)
    assert entry is not None and ledger.raw(entry) == NUL_MAIL  # the bytes as they came
    assert all(safe(v) for v in (entry.message_id, entry.sender, entry.subject))
    assert ledger.receive("keiyaku", NUL_MAIL) == type(receipt)(receipt.id, False)
    # A lookup by the Message-ID as the mail has it binds the same safe text.
    assert ledger.same_message("keiyaku", "<nul\x00.1@maru-kensetsu.example.jp>", "b" * 64,
                               -1) is None


def test_a_decision_and_its_reply_request_may_hold_nul_and_surrogates(store, tmp_path):
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    row = ledger.receive("keiyaku", NUL_MAIL).id
    entry = ledger.claim(now=datetime.now(UTC))
    assert entry is not None and entry.id == row
    hostile = "件名\x00\udce5\ud800"
    ledger.decide(row, {"status": "discrepancy", "subject": hostile, "sender": hostile},
                  ReplyRequest("tanto@maru-kensetsu.example.jp", "discrepancy",
                               {"subject": hostile}),
                  None, attempt=entry.attempts)
    with store.engine.connect() as conn:
        decision = conn.execute(select(ledger_table.c.decision)
                                .where(ledger_table.c.id == row)).scalar_one()
        context = conn.execute(select(reply_requests.c.context)
                               .where(reply_requests.c.ledger_id == row)).scalar_one()
    assert json.loads(decision)["subject"].startswith("件名\x00")  # JSON escapes the NUL
    assert safe(decision) and safe(context)
    assert "\ufffd" in json.loads(context)["subject"]


def test_lookups_with_hostile_message_ids_find_what_was_stored(store):
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(insert(ledger_table).values(
            mailbox="queue", sha256="0" * 64, spool_name="x", size=1, received_at=now,
            state="decided", attempts=1, action_state="none", reply_wanted=True))
        ledger_id = conn.execute(select(ledger_table.c.id)).scalar_one()
        conn.execute(insert(submissions).values(
            ledger_id=ledger_id, notice_hash="1" * 64, guarantee_number="35075-00001M",
            kind="前払金保証", project_name="〇〇\x00工事", message_id="<s\x00@maru.example.jp>",
            earlier_ids="<e\udce5@maru.example.jp>", state="sent", created_at=now, reminders=0))
        found = conn.execute(select(submissions.c.id).where(
            submissions.c.message_id.in_(["<s\x00@maru.example.jp>"]))).all()
        earlier = conn.execute(select(submissions.c.id).where(
            submissions.c.earlier_ids.contains("<e\udce5@maru.example.jp>", autoescape=True))).all()
    assert len(found) == len(earlier) == 1


def test_the_throttle_takes_an_overlong_hostile_sender(store):
    now = datetime.now(UTC)
    sender = "a" * 400 + "\x00@maru-kensetsu.example.jp"
    store.record_key_failure("sender", sender, now)
    assert store.key_failures_since("35075-00001M", now - timedelta(hours=1), sender,
                                    now - timedelta(hours=1)) == (0, 1)


def test_the_listener_accepts_a_mail_with_nul_in_its_headers(store, tmp_path):
    """The 451 seen on PostgreSQL: a permanent property of the message is no temporary fault."""
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    listener = IntakeListener(ListenerSettings(port=0, lmtp=True,
                                               mailboxes={"keiyaku@issuer.example.jp": "k"}),
                              ledger)
    listener.start()
    try:
        with smtplib.LMTP("127.0.0.1", listener.port, timeout=30) as client:
            client.ehlo()
            assert client.mail("tanto@maru-kensetsu.example.jp", ["BODY=8BITMIME"])[0] == 250
            assert client.rcpt("keiyaku@issuer.example.jp")[0] == 250
            code, reply = client.data(NUL_MAIL)
    finally:
        listener.stop()
    assert code == 250, reply
    assert [e.mailbox for e in ledger.entries()] == ["k"]


def test_only_plausible_message_ids_are_looked_up_and_only_so_many():
    assert referenced_ids("<a\x00@x.jp>", "<ok@x.jp> <\xe5@x.jp> <b c@x.jp>") == ["<ok@x.jp>"]
    many = " ".join(f"<r{i}@x.jp>" for i in range(5000))
    ids = referenced_ids("<parent@x.jp>", many)
    assert len(ids) == MAX_REFERENCES
    assert ids[:2] == ["<parent@x.jp>", "<r4999@x.jp>"]  # the parent, then the newest


def test_an_answer_naming_thousands_of_numbers_stays_small():
    text = "\n".join(f"35075-{i:05d}M 確認しました " + "x" * 5000 for i in range(3000))
    answer = read_answer(None, "Re: 提出", [text])
    assert len(answer.numbers) == MAX_NUMBERS
    assert len(answer.excerpt) == 40 and max(map(len, answer.excerpt)) <= 200
    assert answer.verdict == "confirmed"

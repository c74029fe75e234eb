"""The ledger and spool on SQLite and PostgreSQL: exactly once, durable, crash-tolerant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailbot.ledger import MAX_ATTEMPTS, Ledger, ReplyRequest, Spool

RAW = b"From: a@maru.example.jp\r\nMessage-ID: <1@maru.example.jp>\r\nSubject: t\r\n\r\nhello\r\n"


@pytest.fixture
def ledger(store, tmp_path):
    return Ledger(store.engine, Spool(tmp_path / "spool"))


def test_receive_is_durable_and_idempotent(ledger, tmp_path):
    first = ledger.receive("keiyaku", RAW, uidvalidity=7, uid=1)
    assert first.new
    entry = ledger.get(first.id)
    assert ledger.raw(entry) == RAW
    assert entry.received_at.utcoffset() is not None  # SQLite too: read back as UTC
    assert not list((tmp_path / "spool").rglob("*.tmp"))  # no temp file left behind
    assert ledger.receive("keiyaku", RAW, uidvalidity=7, uid=1) == type(first)(first.id, False)
    # A sender's retry (same bytes, no UID) and a UIDVALIDITY change find the same row …
    assert not ledger.receive("keiyaku", RAW).new
    assert not ledger.receive("keiyaku", RAW, uidvalidity=8, uid=3).new
    moved = ledger.get(first.id)
    assert (moved.uidvalidity, moved.uid) == (8, 3)  # … which now knows where the mail is
    # … while the same bytes in another mailbox are another submission.
    assert ledger.receive("other", RAW).new
    assert ledger.counts() == {"keiyaku": {"received": 1}, "other": {"received": 1}}


def test_claim_decide_and_the_stored_reply(ledger, store):
    from sqlalchemy import select

    from mailbot.store.schema import reply_requests

    row = ledger.receive("keiyaku", RAW).id
    entry = ledger.claim(now=datetime.now(UTC))
    assert (entry.id, entry.state, entry.attempts) == (row, "processing", 1)
    assert ledger.claim(now=datetime.now(UTC)) is None  # nothing else waiting
    ledger.decide(row, {"status": "verified"}, ReplyRequest("a@maru.example.jp", "confirmation",
                                                            {"n": 1}), "move:電子保証/処理済")
    assert ledger.get(row).state == "decided"
    assert [e.id for e in ledger.pending_actions("keiyaku")] == [row]
    ledger.action_done(row)
    assert ledger.pending_actions("keiyaku") == []
    with store.engine.connect() as conn:
        assert len(conn.execute(select(reply_requests)).all()) == 1
    with pytest.raises(RuntimeError):  # a second decision for the same message is refused
        ledger.decide(row, {"status": "verified"}, None, None)


def test_three_crashes_quarantine_then_retry(ledger):
    row = ledger.receive("keiyaku", RAW).id
    states = []
    for _ in range(MAX_ATTEMPTS):
        entry = ledger.claim(now=datetime.now(UTC))
        states.append(ledger.fail(entry.id, "Traceback …\nValueError: boom"))
    assert states == ["received", "received", "quarantined"]
    assert ledger.claim(now=datetime.now(UTC)) is None
    quarantined = ledger.entries(state="quarantined")
    assert [e.id for e in quarantined] == [row] and "boom" in quarantined[0].last_error
    assert ledger.retry(row)
    assert ledger.claim(now=datetime.now(UTC)).attempts == 1


def test_retry_in_the_callers_transaction_is_undone_with_it(ledger, store):
    """The console retries a quarantined row and writes its audit entry in one commit: when
    that commit does not happen, the row stays quarantined."""
    row = ledger.receive("keiyaku", RAW).id
    for _ in range(MAX_ATTEMPTS):
        ledger.fail(ledger.claim(now=datetime.now(UTC)).id, "ValueError: boom")
    with store.engine.connect() as conn:
        with conn.begin() as tx:
            assert ledger.retry(row, conn=conn)
            tx.rollback()
    assert ledger.get(row).state == "quarantined"
    with store.engine.begin() as conn:
        assert ledger.retry(row, conn=conn) and not ledger.retry(row, conn=conn)
    assert ledger.get(row).state == "received"


def test_recover_after_a_crash_mid_processing(ledger):
    row = ledger.receive("keiyaku", RAW).id
    ledger.claim(now=datetime.now(UTC))  # … and the process dies here
    assert ledger.claim(now=datetime.now(UTC)) is None
    assert ledger.recover() == 1
    entry = ledger.claim(now=datetime.now(UTC))
    assert entry.id == row and entry.attempts == 2  # the crash counted as an attempt


def test_a_message_that_kills_the_process_is_quarantined_at_start(ledger):
    row = ledger.receive("keiyaku", RAW).id
    for _ in range(MAX_ATTEMPTS):
        assert ledger.claim(now=datetime.now(UTC)).id == row  # … and the whole process dies each time
        ledger.recover()
    assert ledger.get(row).state == "quarantined"
    assert "process died" in ledger.get(row).last_error


def test_a_stale_claim_cannot_decide_or_fail_the_row(ledger):
    row = ledger.receive("keiyaku", RAW).id
    stale = ledger.claim(now=datetime.now(UTC))
    ledger.recover()  # another process took over …
    fresh = ledger.claim(now=datetime.now(UTC))  # … and claimed the row again
    with pytest.raises(RuntimeError):
        ledger.decide(row, {"status": "x"}, None, None, attempt=stale.attempts)
    assert ledger.fail(row, "late crash", attempt=stale.attempts) == "processing"
    ledger.decide(row, {"status": "verified"}, None, None, attempt=fresh.attempts)
    assert ledger.get(row).state == "decided"

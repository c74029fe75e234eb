"""Dovecot → daemon → aiosmtpd sink: a Shift_JIS subject with NEC specials gets one reply.

The subject is RFC 2047 ``=?Shift_JIS?B?…?=`` whose bytes carry ① and ㈱ in cp932 (what
Windows mailers write under that label). It used to reach the reply undecoded, and
``as_bytes()`` raised at every outbox tick while `mailbot status` said backlog 0. Now the
contractor gets exactly one reply whose subject decodes to the right Japanese text. The
daemon's clock is injected: a Saturday night in the year-end closure (replies are
immediate), so the test does not depend on when it runs.
"""

from __future__ import annotations

import base64
from datetime import datetime
from email import message_from_bytes, policy
from email.utils import make_msgid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mailbot.store import GuaranteeEvent
from mailbot.store.schema import ledger, outbox, reply_requests

from .issuer_daemon import issuer_daemon
from .test_daemon import USER, wait_for

NOW = datetime(2026, 12, 26, 23, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
SUBJECT = "【電子保証】①〇〇浄水場△△修繕工事 〇〇建設㈱"


def shift_jis_mail() -> bytes:
    """As a Windows mailer writes it: subject and body in cp932 under the Shift_JIS label."""
    word = base64.b64encode(SUBJECT.encode("cp932")).decode()
    body = base64.encodebytes("保証契約番号：35075-00001M\r\n認証キー：Z28YUEAJ38ux\r\n\r\n"
                              "〇〇建設㈱\r\n".encode("cp932")).decode()
    return (f"From: tanto@maru-kensetsu.example.jp\r\nTo: {USER}\r\n"
            f"Subject: =?Shift_JIS?B?{word}?=\r\n"
            f"Message-ID: {make_msgid(domain='maru-kensetsu.example.jp')}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=Shift_JIS\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{body}").encode("ascii")


@pytest.fixture
def running(dovecot, sink, tmp_path, monkeypatch):
    events = [GuaranteeEvent("35075-00001M", "new", "Z28YUEAJ38ux", issuer="〇〇市", source="t")]
    with issuer_daemon(dovecot, sink, tmp_path, monkeypatch, events,
                       clock=lambda: NOW) as (_config, store, daemon):
        yield store, daemon


def test_a_shift_jis_subject_with_nec_characters_gets_one_correct_reply(running, dovecot,
                                                                          sink):
    store, daemon = running
    raw = shift_jis_mail()
    dovecot.deliver(USER, raw)

    def settled() -> bool:
        with store.engine.connect() as conn:
            states = conn.execute(select(ledger.c.state, ledger.c.action_state)).all()
            pending = conn.execute(select(reply_requests.c.id).where(
                reply_requests.c.state.in_(("stored", "queued")))).all()
        return states == [("replied", "done")] and not pending

    wait_for(settled, 120, "the mail decided, filed and answered")
    # One more outbox run, by hand with the same clock: nothing else may go out.
    daemon.outgoing.queue(NOW)
    daemon.outgoing.flush(NOW)
    assert len(sink.accepted) == 1
    _from, to, sent = sink.accepted[0]
    reply = message_from_bytes(sent, policy=policy.default)
    assert to == ["tanto@maru-kensetsu.example.jp"]
    assert str(reply["Subject"]) == "Re: " + SUBJECT
    original = message_from_bytes(raw, policy=policy.default)
    assert str(reply["In-Reply-To"]).strip() == str(original["Message-ID"]).strip()
    assert "35075-00001M" in reply.get_content() and "Z28Y********" in reply.get_content()
    with store.engine.connect() as conn:
        assert conn.execute(select(ledger.c.subject)).scalar_one() == SUBJECT
        assert conn.execute(select(outbox.c.subject)).scalar_one() == "Re: " + SUBJECT

"""Dovecot → daemon → aiosmtpd sink: the contractor gets the right Japanese reply, once.

Also the relay refusing then accepting (one reply arrives), a permanent failure showing in
the staff digest, and no reply to auto-replies, bounces and list mail. Window edges and
holidays are covered with an injected clock in tests/test_outbox.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from mailbot.outgoing import Outgoing
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import ledger, outbox, reply_requests

from .issuer_daemon import issuer_daemon
from .test_daemon import USER, notice_mail, wait_for

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks



@pytest.fixture
def running(dovecot, sink, tmp_path, monkeypatch):
    events = [GuaranteeEvent("35075-00001M", "new", "Z28YUEAJ38ux", issuer="〇〇市", source="t")]
    issuer = 'reply_name = "〇〇市 契約検査課"\nstaff = ["kensa@issuer.example.jp"]\n'
    with issuer_daemon(dovecot, sink, tmp_path, monkeypatch, events, issuer=issuer) as running:
        yield running


def settled(store, mails: int) -> bool:  # noqa: ANN001
    """`mails` ledger rows decided, no reply request waiting to be queued, nothing queued."""
    with store.engine.connect() as conn:
        decided = conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.state.in_(("decided", "replied")))).scalar_one()
        waiting = conn.execute(select(func.count()).select_from(reply_requests).where(
            reply_requests.c.state == "stored")).scalar_one()
        queued = conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.state == "queued")).scalar_one()
    return decided == mails and waiting == 0 and queued == 0


def replies(sink) -> dict[str, object]:
    """Accepted messages by the Message-ID they answer."""
    out = {}
    for _from, _to, raw in sink.accepted:
        message = message_from_bytes(raw, policy=policy.default)
        out[str(message["In-Reply-To"]).strip()] = message
    return out


def test_each_contractor_gets_one_correct_reply(running, dovecot, sink):
    verified, unknown = notice_mail(1), notice_mail(77)
    robot = notice_mail(2).replace(b"Subject:", b"Auto-Submitted: auto-replied\nSubject:", 1)
    bounce = notice_mail(3)  # delivered with the null envelope sender: Return-Path: <>
    listed = notice_mail(4).replace(b"Subject:", b"List-Id: <kouji.example.jp>\nSubject:", 1)
    for raw in (verified, unknown, robot, listed):
        dovecot.deliver(USER, raw)
    dovecot.deliver(USER, bounce, sender="")
    config, store, daemon = running
    wait_for(lambda: len(sink.accepted) >= 2, 60, "two replies at the sink")
    # All five decided and nothing left to send: only then is "two replies" the whole story.
    wait_for(lambda: settled(store, 5), 60, "every mail decided and the outbox empty")
    assert len(sink.accepted) == 2
    got = replies(sink)
    ok = got[str(message_from_bytes(verified, policy=policy.default)["Message-ID"]).strip()]
    bad = got[str(message_from_bytes(unknown, policy=policy.default)["Message-ID"]).strip()]
    for reply in (ok, bad):
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["Subject"] == "Re: " + str(message_from_bytes(
            verified if reply is ok else unknown, policy=policy.default)["Subject"])
        assert str(reply["References"]).endswith(str(reply["In-Reply-To"]))
        assert reply["To"].addresses[0].addr_spec.startswith("tanto")
        assert "〇〇市 契約検査課" in str(reply["From"])
    ok_text, bad_text = ok.get_content(), bad.get_content()
    assert "35075-00001M" in ok_text and "Z28Y********" in ok_text
    assert "35075-00077M" in bad_text and "保証契約番号の電子保証を確認できませんでした" in bad_text
    for raw in (a[2] for a in sink.accepted):
        assert b"Z28YUEAJ38ux" not in raw


def test_the_relay_refuses_then_accepts_and_the_reply_arrives_once(running, dovecot, sink):
    config, store, daemon = running
    sink.refuse("451 4.3.0 try again later", 2)
    dovecot.deliver(USER, notice_mail(1))
    # The first attempts are refused; the outbox waits out its backoff. Drive the clock past
    # it instead of sleeping a minute.
    wait_for(lambda: len(sink.attempts) >= 1, 60, "a first attempt")
    later = datetime.now(UTC)
    for step in range(1, 6):
        daemon.outgoing.flush(later + timedelta(minutes=10 * step))
        if sink.accepted:
            break
    assert len(sink.accepted) == 1 and len(sink.attempts) == 3


def test_a_permanent_failure_shows_in_the_digest(running, dovecot, sink):
    config, store, daemon = running
    sink.refuse("550 5.1.1 no such user", 1)
    dovecot.deliver(USER, notice_mail(1))
    wait_for(lambda: any(s.startswith("550") for s, _ in sink.attempts), 60, "the refusal")
    wait_for(lambda: len(sink.accepted) >= 1, 30, "the staff alert")
    alert = message_from_bytes(sink.accepted[0][2], policy=policy.default)
    assert alert["To"].addresses[0].addr_spec == "kensa@issuer.example.jp"
    assert alert["Auto-Submitted"] == "auto-generated"
    replier = Outgoing(config, store)
    now = datetime.now(UTC)
    assert replier.digest(now) == 1
    # The digest waits for business hours: flush at the next opening, whenever the test runs.
    opening = replier.outbox.window.next_open(now + timedelta(minutes=1))
    replier.flush(opening + timedelta(minutes=1))
    wait_for(lambda: len(sink.accepted) >= 2, 10, "the digest")
    digest = next(message_from_bytes(raw, policy=policy.default)
                  for _f, _t, raw in sink.accepted[1:])
    text = digest.get_content()
    assert "550" in text and "tanto" in text

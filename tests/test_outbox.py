"""The outbox and its send window, on SQLite and PostgreSQL, sending to a real aiosmtpd sink.

Time is injected everywhere (`now=`): nothing here sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.policy import SMTP, default
from email.utils import make_msgid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mailbot.ledger import Ledger, ReplyRequest, Spool
from mailbot.outbox import Outbox, SendWindow, SmtpSettings
from mailbot.store.schema import ledger as ledger_table
from mailbot.store.schema import outbox as outbox_table
from mailbot.store.schema import reply_requests

from .configs import issuer_config
from .conftest import TEST_SECRET
from .servers import free_port

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

JST = ZoneInfo("Asia/Tokyo")
FROM = "keiyaku@issuer.example.jp"
CONTRACTOR = "contractor@maru.example.jp"
# Tuesday 2026-11-24, 10:00 JST: inside the window.
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=JST)


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=JST)


# -- a real SMTP sink --------------------------------------------------------------------------

def message_id_of(raw: bytes) -> str:
    return str(BytesHeaderParser().parsebytes(raw)["Message-ID"]).strip()


# -- stored replies, as the pipeline leaves them ------------------------------------------------

@pytest.fixture
def ledger(store, tmp_path):
    return Ledger(store.engine, Spool(tmp_path / "spool"))


_serial = iter(range(1, 10**6))


def stored_reply(ledger: Ledger, to_addr: str = CONTRACTOR) -> tuple[int, int]:
    """A decided ledger row with a stored reply request; returns (ledger id, request id)."""
    n = next(_serial)
    raw = (f"From: {to_addr}\r\nMessage-ID: <in-{n}@maru.example.jp>\r\nSubject: 提出\r\n\r\n"
           f"保証契約番号 {n}\r\n").encode()
    row = ledger.receive("keiyaku", raw, now=T0).id
    assert ledger.claim(now=T0).id == row
    ledger.decide(row, {"status": "verified"},
                  ReplyRequest(to_addr, "confirmation", {"contractor": "〇〇建設", "n": n}),
                  None, now=T0)
    with ledger.engine.connect() as conn:
        request = conn.execute(
            select(reply_requests.c.id).where(reply_requests.c.ledger_id == row)).scalar_one()
    return row, request


def render(reply, message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"〇〇市 契約課 <{FROM}>"
    msg["To"] = reply.to_addr
    msg["Subject"] = f"保証契約の確認結果（{reply.context['contractor']}）"
    msg["Message-ID"] = message_id
    msg.set_content(f"{reply.context['contractor']} 御中\n\n受け付けました（{reply.context['n']}）。\n")
    return msg.as_bytes(policy=SMTP)


def new_message_id(reply) -> str:
    return make_msgid(domain="issuer.example.jp")


def plain(subject: str = "本日の受付一覧", to: str = "staff@issuer.example.jp") -> tuple[bytes, str]:
    message_id = make_msgid(domain="issuer.example.jp")
    msg = EmailMessage()
    msg["From"] = FROM
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("〇〇建設 1件\n")
    return msg.as_bytes(policy=SMTP), message_id


def queue_digests(outbox: Outbox, *subjects: str) -> list[int]:
    """One digest to the staff per subject, queued at T0; their row ids."""
    ids = []
    for subject in subjects:
        raw, message_id = plain(subject)
        ids.append(outbox.queue("digest", ["staff@issuer.example.jp"], raw, message_id, subject,
                                T0))
    return ids


def request_state(store, request_id: int) -> str:
    with store.engine.connect() as conn:
        return conn.execute(select(reply_requests.c.state)
                            .where(reply_requests.c.id == request_id)).scalar_one()


# -- the send window ---------------------------------------------------------------------------

def test_window_edges_on_a_weekday():
    w = SendWindow()
    assert w.is_open(jst(2026, 11, 24, 16, 59))
    assert w.is_open(jst(2026, 11, 24, 16, 59, 59, 999999))
    assert not w.is_open(jst(2026, 11, 24, 17, 0))
    assert w.is_open(jst(2026, 11, 24, 9, 0)) and not w.is_open(jst(2026, 11, 24, 8, 59))
    # The same moments given in UTC: 16:59 JST is 07:59 UTC.
    assert w.is_open(datetime(2026, 11, 24, 7, 59, tzinfo=UTC))
    assert not w.is_open(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    with pytest.raises(ValueError):
        w.is_open(datetime(2026, 11, 24, 10, 0))  # naive


def test_window_is_closed_on_holidays_weekends_and_the_year_end():
    w = SendWindow()
    assert not w.is_open(jst(2026, 11, 23, 10, 0))  # 勤労感謝の日 (Monday)
    assert not w.is_open(jst(2026, 5, 6, 10, 0))  # 振替休日
    assert not w.is_open(jst(2026, 9, 22, 10, 0))  # 国民の休日
    assert not w.is_open(jst(2026, 12, 30, 10, 0))  # Wednesday, year-end closure
    assert not w.is_open(jst(2026, 1, 2, 10, 0))  # Friday, year-end closure
    assert not w.is_open(jst(2025, 12, 29, 10, 0))  # Monday, first day of the closure
    assert w.is_open(jst(2026, 12, 28, 10, 0)) and w.is_open(jst(2026, 1, 5, 10, 0))
    assert not w.is_open(jst(2026, 11, 28, 10, 0))  # Saturday
    assert not w.is_open(jst(2026, 11, 29, 10, 0))  # Sunday
    assert w.is_open_day(date(2026, 11, 24))
    # Without the holiday rule only the weekday and the closures count.
    assert SendWindow(skip_holidays=False).is_open(jst(2026, 11, 23, 10, 0))


def test_next_open_skips_holiday_weekends_and_the_year_end():
    w = SendWindow()
    tuesday = jst(2026, 11, 24, 9, 0)
    assert w.next_open(jst(2026, 11, 20, 17, 0)) == tuesday  # Fri evening → Sat Sun 勤労感謝
    assert w.next_open(jst(2026, 11, 21, 12, 0)) == tuesday
    assert w.next_open(jst(2026, 11, 24, 7, 30)) == tuesday  # early the same morning
    assert w.next_open(jst(2026, 11, 24, 16, 59)) == jst(2026, 11, 24, 16, 59)  # open: itself
    assert w.next_open(jst(2026, 9, 18, 17, 0)) == jst(2026, 9, 24, 9, 0)  # シルバーウィーク
    assert w.next_open(jst(2026, 12, 28, 17, 30)) == jst(2027, 1, 4, 9, 0)  # 年末年始
    # Answered in the zone it was asked in.
    found = w.next_open(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    assert found.tzinfo == UTC and found == tuesday
    custom = SendWindow(start=time(8, 30), end=time(12, 0), weekdays=(5,), closed_days=())
    assert custom.next_open(jst(2026, 11, 24, 10, 0)) == jst(2026, 11, 28, 8, 30)
    with pytest.raises(ValueError):
        SendWindow(start=time(17, 0), end=time(9, 0))


# -- queueing ----------------------------------------------------------------------------------

def test_queue_replies_takes_each_stored_request_once(store, ledger, sink):
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    first = stored_reply(ledger)
    second = stored_reply(ledger, "genba@sankaku.example.jp")
    chosen: list[str] = []

    def message_id_for(reply):
        chosen.append(make_msgid(domain="issuer.example.jp"))
        return chosen[-1]

    assert outbox.queue_replies(render, message_id_for, T0) == 2
    assert outbox.queue_replies(render, message_id_for, T0) == 0  # nothing stored any more
    rows = outbox.rows(with_raw=True)
    assert len(rows) == 2 and len(chosen) == 2
    assert [r.reply_request_id for r in rows] == [first[1], second[1]]
    assert [r.message_id for r in rows] == chosen
    assert all(message_id_of(r.raw) == r.message_id for r in rows)
    assert rows[0].subject == "保証契約の確認結果（〇〇建設）"
    assert rows[0].to_addrs == CONTRACTOR and rows[0].ledger_id == first[0]
    assert rows[0].state == "queued" and rows[0].attempts == 0 and not rows[0].immediate
    assert rows[0].next_attempt_at == T0 and rows[0].created_at == T0
    assert rows[0].deadline == T0 + timedelta(days=2)
    assert outbox.rows()[0].raw is None  # raw only when asked for
    assert request_state(store, first[1]) == "queued"


def test_a_request_whose_rendering_fails_ends_failed_at_once(store, ledger, sink):
    """Rendering is deterministic: a failure is kept with its error, never tried every tick;
    once the cause is fixed, retry_reply renders it again."""
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    _row, request = stored_reply(ledger)
    second = stored_reply(ledger)[1]

    def broken(reply, message_id):
        raise ValueError("template \x00variable")  # NUL: PostgreSQL text refuses it

    alerts = []
    assert outbox.queue_replies(broken, new_message_id, T0,
                                on_render_failure=lambda r, e: alerts.append((r.id, e))) == 0
    assert request_state(store, request) == "failed" and outbox.rows() == []
    assert alerts == [(request, "ValueError: template variable"),
                      (second, "ValueError: template variable")]
    failed = {r.id: r for r in outbox.replies("failed")}
    assert failed[request].error == "ValueError: template variable"
    assert failed[request].failed_at == T0
    # Not tried again: the next run renders nothing and alerts nobody.
    assert outbox.queue_replies(render, new_message_id, T0,
                                on_render_failure=lambda r, e: alerts.append(r.id)) == 0
    assert len(alerts) == 2
    # A renderer that forgets the chosen Message-ID is refused, too.
    assert outbox.retry_reply(request) and request_state(store, request) == "stored"
    assert not outbox.retry_reply(request)  # only a failed one
    assert outbox.queue_replies(lambda r, m: render(r, "<other@issuer.example.jp>"),
                                new_message_id, T0) == 0
    assert request_state(store, request) == "failed"
    assert "Message-ID" in outbox.replies("failed")[0].error
    assert outbox.retry_reply(request)
    assert outbox.queue_replies(render, new_message_id, T0) == 1
    assert request_state(store, request) == "queued"
    assert outbox.cancel_reply(second) and request_state(store, second) == "cancelled"
    assert not outbox.retry_reply(second)
    from mailbot.ledger import requests
    with store.engine.connect() as conn:
        found = requests.get(conn, second)
        assert (found.id, found.state, found.to_addr) == (second, "cancelled", CONTRACTOR)
        assert requests.get(conn, 9999) is None


def test_rate_limit_suppresses_the_eleventh_reply_within_an_hour(store, ledger, sink):
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    requests = [stored_reply(ledger)[1] for _ in range(11)]
    other = stored_reply(ledger, "genba@sankaku.example.jp")[1]
    assert outbox.queue_replies(render, new_message_id, T0) == 11  # 10 + the other address
    assert [request_state(store, r) for r in requests] == ["queued"] * 10 + ["suppressed"]
    assert request_state(store, other) == "queued"
    assert len(outbox.rows()) == 11
    assert requests[-1] not in [r.reply_request_id for r in outbox.rows()]
    # Within the hour (and whatever the address's case) the limit holds; after it, replies go.
    later = stored_reply(ledger, CONTRACTOR.upper())[1]
    assert outbox.queue_replies(render, new_message_id, T0 + timedelta(minutes=59)) == 0
    assert request_state(store, later) == "suppressed"
    again = stored_reply(ledger)[1]
    assert outbox.queue_replies(render, new_message_id, T0 + timedelta(minutes=61)) == 1
    assert request_state(store, again) == "queued"


def test_queue_is_idempotent_on_the_message_id(store, sink):
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    raw, message_id = plain()
    first = outbox.queue("digest", ["staff@issuer.example.jp"], raw, message_id, "本日の受付一覧",
                         T0)
    assert outbox.queue("digest", ["staff@issuer.example.jp"], raw, message_id, "本日の受付一覧",
                        T0) == first
    assert len(outbox.rows()) == 1
    with pytest.raises(ValueError):  # the recorded Message-ID must be the one in the message
        outbox.queue("alert", ["staff@issuer.example.jp"], raw, "<x@issuer.example.jp>", "x", T0)
    with pytest.raises(ValueError):
        outbox.queue("notice", ["staff@issuer.example.jp"], raw, message_id, "x", T0)


# -- sending -----------------------------------------------------------------------------------

def test_temporary_refusals_retry_with_backoff_then_one_message_is_sent(store, ledger, sink):
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    ledger_id, request = stored_reply(ledger)
    outbox.queue_replies(render, new_message_id, T0)
    [row] = outbox.rows()
    sink.refuse("451 4.3.0 Try again later", 2)

    report = outbox.flush(T0)
    assert report.deferred == [row.id] and not report.sent
    after_one = outbox.get(row.id)
    assert (after_one.state, after_one.attempts) == ("queued", 1)
    assert after_one.next_attempt_at == T0 + timedelta(seconds=60)
    assert "451" in after_one.last_error

    assert outbox.flush(T0 + timedelta(seconds=59)).deferred == []  # not due yet
    assert len(sink.attempts) == 1

    report = outbox.flush(T0 + timedelta(seconds=60))
    assert report.deferred == [row.id]
    after_two = outbox.get(row.id)
    assert after_two.attempts == 2
    assert after_two.next_attempt_at == T0 + timedelta(seconds=60 + 300)

    report = outbox.flush(T0 + timedelta(seconds=360))
    assert report.sent == [row.id]
    sent = outbox.get(row.id)
    assert (sent.state, sent.attempts, sent.sent_at) == ("sent", 3, T0 + timedelta(seconds=360))
    assert outbox.flush(T0 + timedelta(hours=1)).sent == []  # never twice

    assert len(sink.accepted) == 1 and len(sink.attempts) == 3
    mail_from, rcpt_tos, content = sink.accepted[0]
    assert (mail_from, rcpt_tos) == (FROM, [CONTRACTOR])
    # The Message-ID was fixed when queued and is the same in every attempt.
    assert {message_id_of(raw) for _status, raw in sink.attempts} == {row.message_id}
    body = BytesParser(policy=default).parsebytes(content).get_body().get_content()
    assert "〇〇建設 御中" in body
    assert request_state(store, request) == "sent"
    with store.engine.connect() as conn:
        assert conn.execute(select(ledger_table.c.state)
                            .where(ledger_table.c.id == ledger_id)).scalar_one() == "replied"


def test_a_permanent_refusal_fails_at_once_and_alerts(store, ledger, sink):
    alerts = []
    outbox = Outbox(store.engine, sink.settings, SendWindow(), on_permanent_failure=alerts.append)
    _ledger_id, request = stored_reply(ledger)
    outbox.queue_replies(render, new_message_id, T0)
    sink.refuse("550 5.1.1 No such user", 1)
    report = outbox.flush(T0)
    [row] = outbox.rows()
    assert report.failed == [row.id] and not report.sent and not report.deferred
    assert (row.state, row.attempts) == ("failed", 1) and "550" in row.last_error
    assert [a.id for a in alerts] == [row.id] and alerts[0].state == "failed"
    assert request_state(store, request) == "failed"
    assert sink.accepted == []
    assert outbox.flush(T0 + timedelta(days=1)).failed == []  # a failed row is not tried again
    assert [r.id for r in outbox.failed_since(T0 - timedelta(hours=1))] == [row.id]
    assert outbox.failed_since(T0 + timedelta(minutes=1)) == []


def test_temporary_failures_past_the_deadline_fail(store, sink):
    alerts = []
    outbox = Outbox(store.engine, sink.settings, SendWindow(), deadline=timedelta(minutes=10),
                    backoff=(60, 300, 900), on_permanent_failure=alerts.append)
    raw, message_id = plain()
    row_id = outbox.queue("digest", ["staff@issuer.example.jp"], raw, message_id, "一覧", T0)
    sink.refuse("452 4.2.2 Mailbox full", 10)
    assert outbox.flush(T0).deferred == [row_id]  # next at +60 s
    assert outbox.flush(T0 + timedelta(seconds=60)).deferred == [row_id]  # next at +360 s
    report = outbox.flush(T0 + timedelta(seconds=360))  # next would be +1260 s > +600 s
    assert report.failed == [row_id]
    row = outbox.get(row_id)
    assert (row.state, row.attempts) == ("failed", 3)
    assert "452" in row.last_error and "deadline" in row.last_error
    assert [a.id for a in alerts] == [row_id]
    assert sink.accepted == []


def test_refused_recipients(store, sink):
    alerts = []
    outbox = Outbox(store.engine, sink.settings, SendWindow(), on_permanent_failure=alerts.append)
    sink.rcpt_answers = {"gone@issuer.example.jp": "550 5.1.1 No such user",
                         "full@issuer.example.jp": "452 4.2.2 Mailbox full"}
    rows = {}
    for name, to in (("partly", ["staff@issuer.example.jp", "gone@issuer.example.jp"]),
                     ("gone", ["gone@issuer.example.jp"]),
                     ("full", ["full@issuer.example.jp", "gone@issuer.example.jp"])):
        raw, message_id = plain(name, to[0])
        rows[name] = outbox.queue("digest", to, raw, message_id, name, T0)
    report = outbox.flush(T0)
    # Delivered to some: sent (a retry would duplicate theirs), the refusal noted.
    assert report.sent == [rows["partly"]]
    assert "gone@issuer.example.jp: 550" in outbox.get(rows["partly"]).last_error
    assert [a for _f, a, _c in sink.accepted] == [["staff@issuer.example.jp"]]
    # Refused for all with 5xx: failed; with a 4xx among them: tried again later.
    assert report.failed == [rows["gone"]] and [a.id for a in alerts] == [rows["gone"]]
    assert report.deferred == [rows["full"]]
    assert outbox.get(rows["full"]).state == "queued"


def test_a_dropped_connection_leaves_the_rest_for_the_next_flush(store, sink):
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    ids = queue_digests(outbox, "一", "二")
    sink.refuse("421 4.3.2 Service shutting down", 1)  # smtplib closes the connection
    report = outbox.flush(T0)
    assert report.deferred == [ids[0]] and report.sent == [] and report.waiting == 1
    assert outbox.get(ids[1]).attempts == 0 and outbox.get(ids[1]).state == "queued"
    assert outbox.flush(T0 + timedelta(seconds=1)).sent == [ids[1]]
    assert outbox.flush(T0 + timedelta(seconds=60)).sent == [ids[0]]


def test_an_unreachable_relay_counts_as_a_temporary_failure(store):
    dead = SmtpSettings(host="127.0.0.1", port=free_port(), timeout=5)  # nothing listens
    outbox = Outbox(store.engine, dead, SendWindow())
    raw, message_id = plain()
    row_id = outbox.queue("digest", ["staff@issuer.example.jp"], raw, message_id, "一覧", T0)
    report = outbox.flush(T0)
    assert report.deferred == [row_id] and report.error
    row = outbox.get(row_id)
    assert (row.state, row.attempts) == ("queued", 1)
    assert row.next_attempt_at == T0 + timedelta(seconds=60)


def test_immediate_rows_go_out_while_the_window_is_closed(store, ledger, sink):
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    saturday_night = jst(2026, 11, 28, 3, 0)
    alert_raw, alert_id = plain("【障害】受付停止", "duty@issuer.example.jp")
    alert = outbox.queue("alert", ["duty@issuer.example.jp", "staff@issuer.example.jp"],
                         alert_raw, alert_id, "【障害】受付停止", saturday_night, immediate=True)
    digest_raw, digest_id = plain()
    digest = outbox.queue("digest", ["staff@issuer.example.jp"], digest_raw, digest_id, "一覧",
                          saturday_night)
    _row, request = stored_reply(ledger)
    outbox.queue_replies(render, new_message_id, saturday_night, immediate=lambda r: True)
    reply = [r.id for r in outbox.rows() if r.kind == "reply"][0]
    # A digest queued in a closed window gets its deadline from the next opening (Mon 09:00).
    assert outbox.get(digest).deadline == jst(2026, 11, 30, 9, 0) + timedelta(days=2)

    report = outbox.flush(saturday_night)
    assert sorted(report.sent) == sorted([alert, reply]) and report.waiting == 1
    assert outbox.get(digest).state == "queued"
    assert sink.accepted[0][1] == ["duty@issuer.example.jp", "staff@issuer.example.jp"]
    assert outbox.flush(jst(2026, 11, 30, 8, 59)).sent == []
    assert outbox.flush(jst(2026, 11, 30, 9, 0)).sent == [digest]
    assert len(sink.accepted) == 3


def test_retry_and_cancel(store, ledger, sink):
    alerts = []
    outbox = Outbox(store.engine, sink.settings, SendWindow(), on_permanent_failure=alerts.append)
    _row, request = stored_reply(ledger)
    outbox.queue_replies(render, new_message_id, T0)
    [row] = outbox.rows()
    sink.refuse("554 5.7.1 Rejected", 1)
    outbox.flush(T0)
    assert outbox.get(row.id).state == "failed"

    later = T0 + timedelta(days=3)
    assert outbox.retry(row.id, later)
    retried = outbox.get(row.id)
    assert (retried.state, retried.attempts) == ("queued", 0)
    assert retried.next_attempt_at == later and retried.deadline == later + timedelta(days=2)
    assert retried.message_id == row.message_id
    assert request_state(store, request) == "queued"
    assert not outbox.retry(row.id, later)  # only failed rows
    assert outbox.flush(later).sent == [row.id]
    assert message_id_of(sink.accepted[0][2]) == row.message_id
    assert not outbox.cancel(row.id)  # sent is sent

    raw, message_id = plain()
    digest = outbox.queue("digest", ["staff@issuer.example.jp"], raw, message_id, "一覧", later)
    assert outbox.cancel(digest) and not outbox.cancel(digest)
    assert outbox.get(digest).state == "cancelled"
    assert outbox.flush(later + timedelta(hours=1)).sent == []
    assert not outbox.retry(digest, later) and not outbox.cancel(9999)
    assert [r.id for r in outbox.rows("cancelled")] == [digest]


def test_retry_and_cancel_in_the_callers_transaction_and_by_message_id(store, ledger, sink):
    """The console changes a row and writes its audit entry in one commit: a rolled-back
    transaction changes neither the row nor its reply request."""
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    _row, request = stored_reply(ledger)
    outbox.queue_replies(render, new_message_id, T0)
    [row] = outbox.rows()
    assert outbox.by_message_id(row.message_id).id == row.id
    assert outbox.by_message_id("<nothing@issuer.example.jp>") is None
    sink.refuse("554 5.7.1 Rejected", 1)
    outbox.flush(T0)
    later = T0 + timedelta(days=1)
    with store.engine.connect() as conn:
        with conn.begin() as tx:
            assert outbox.retry(row.id, later, conn=conn)
            tx.rollback()
    assert outbox.get(row.id).state == "failed" and request_state(store, request) == "failed"
    with store.engine.begin() as conn:
        assert outbox.retry(row.id, later, conn=conn)
    assert outbox.get(row.id).state == "queued" and request_state(store, request) == "queued"
    with store.engine.begin() as conn:
        assert outbox.cancel(row.id, conn=conn) and not outbox.cancel(row.id, conn=conn)
        assert not outbox.cancel(9999, conn=conn)
    assert outbox.get(row.id).state == "cancelled" and request_state(store, request) == "cancelled"
    assert outbox.flush(later).sent == []


def test_the_outbox_table_keeps_one_row_per_reply_request(store, ledger, sink):
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    outbox = Outbox(store.engine, sink.settings, SendWindow())
    _row, request = stored_reply(ledger)
    outbox.queue_replies(render, new_message_id, T0)
    [row] = outbox.rows(with_raw=True)
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(insert(outbox_table).values(
            kind="reply", reply_request_id=request, message_id="<dup@issuer.example.jp>",
            to_addrs=CONTRACTOR, raw=row.raw, state="queued", immediate=False, attempts=0,
            next_attempt_at=T0, deadline=T0, created_at=T0))


# -- the command line --------------------------------------------------------------------------

def mailbot(*args):
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    return subprocess.run([sys.executable, "-m", "mailbot.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_lists_retries_and_cancels(store, store_url, sink, tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(store_url, tmp_path / "spool"), encoding="utf-8")
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    ids = queue_digests(outbox, "本日の受付一覧", "〇〇建設 受付")
    sink.refuse("550 5.1.1 No such user", 1)
    outbox.flush(T0)
    failed, sent = ids

    empty = mailbot("outbox", "list", "--state", "cancelled", "--config", str(path))
    assert empty.returncode == 0 and empty.stdout == "no outbox rows in state cancelled\n"
    listing = mailbot("outbox", "list", "--config", str(path))
    assert listing.returncode == 0, listing.stderr
    header, *lines = listing.stdout.splitlines()
    assert header == "ID\tKIND\tSTATE\tTRIES\tWHEN\tTO\tSUBJECT\tERROR"
    assert lines[0].startswith(f"{failed}\tdigest\tfailed\t1\t2026-11-24T10:00+09:00\t"
                               "staff@issuer.example.jp\t本日の受付一覧\t")
    assert "550" in lines[0] and lines[1].startswith(f"{sent}\tdigest\tsent\t1\t")

    as_json = mailbot("outbox", "list", "--state", "failed", "--json", "--config", str(path))
    rows = json.loads(as_json.stdout)
    assert [(r["id"], r["state"], r["subject"]) for r in rows] == [(failed, "failed",
                                                                     "本日の受付一覧")]

    assert mailbot("outbox", "retry", str(failed), "--config", str(path)).returncode == 0
    assert outbox.get(failed).state == "queued" and outbox.get(failed).attempts == 0
    again = mailbot("outbox", "retry", str(failed), "--config", str(path))
    assert again.returncode == 1 and "is queued, not failed" in again.stderr
    for action in ("retry", "cancel"):
        missing = mailbot("outbox", action, "999", "--config", str(path))
        assert missing.returncode == 1 and "no outbox row 999" in missing.stderr
    assert mailbot("outbox", "cancel", str(failed), "--config", str(path)).returncode == 0
    assert outbox.get(failed).state == "cancelled"
    assert mailbot("outbox", "cancel", str(sent), "--config", str(path)).returncode == 1
    assert mailbot("outbox", "list", "--state", "bogus", "--config", str(path)).returncode == 2

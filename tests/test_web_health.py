"""稼働状況 in the console (issue 16): a source's last error shows for the clerks of its
issuer only, the backlog and the oldest waiting mail from the console's clock, the outbox
counted under the account's scope, and the next send window from that clock; against a
real uvicorn on loopback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from email.utils import make_msgid
from zoneinfo import ZoneInfo

import holidays
import pytest

from mailbot.ledger import MAX_ATTEMPTS
from mailbot.outgoing import outbox_for
from mailbot.web.format import jst

from .web_console import console

pytestmark = pytest.mark.clock

TOKYO = ZoneInfo("Asia/Tokyo")


def working(day) -> bool:  # noqa: ANN001
    """Mon–Fri, no national holiday, not in the 12/29–1/3 closure (said independently of
    `SendWindow`, which the page uses)."""
    return (day.weekday() < 5 and day not in holidays.Japan(years=day.year)
            and not ((day.month, day.day) >= (12, 29) or (day.month, day.day) <= (1, 3)))


def next_day(test, hour: int, minute: int = 0) -> datetime:  # noqa: ANN001
    """`hour`:`minute` JST on the first day after today for which `test(day)` holds, as UTC."""
    day = datetime.now(TOKYO).date() + timedelta(days=1)
    while not test(day):
        day += timedelta(days=1)
    return datetime.combine(day, time(hour, minute), tzinfo=TOKYO).astimezone(UTC)


def raw_mail(subject: str = "認証キーのお知らせ") -> bytes:
    return (f"From: tanto@maru-kensetsu.example.jp\r\nTo: keiyaku@maru.example.jp\r\n"
            f"Subject: {subject}\r\nMessage-ID: {make_msgid(domain='maru-kensetsu.example.jp')}"
            "\r\n\r\nbody\r\n").encode()


def row_of(html: str, mailbox: str) -> str:
    found = re.search(rf'<tr class="source[^"]*" id="source-{mailbox}">(.*?)</tr>', html, re.S)
    assert found, html[:3000]
    return found.group(1)


def cell(row: str, name: str) -> str:
    found = re.search(rf'<td class="{name}">(.*?)</td>', row, re.S)
    assert found, row
    return found.group(1).strip()


def test_a_source_error_shows_for_its_issuers_clerk_only(tmp_path):
    with console(tmp_path) as web:
        web.ledger.set_mailbox_state("maru", 7, 10)
        web.ledger.record_error("maru", "IMAP login failed: [AUTHENTICATIONFAILED] 〇〇")
        maru = web.login("maru-clerk").get("/health")
        assert maru.status_code == 200
        row = row_of(maru.text, "maru")
        assert "IMAP login failed: [AUTHENTICATIONFAILED] 〇〇" in cell(row, "last-error")
        assert "接続できていません" in cell(row, "last-error")
        assert 'id="source-batsu"' not in maru.text and 'id="source-queue"' not in maru.text
        batsu = web.login("batsu-clerk").get("/health").text
        assert "AUTHENTICATIONFAILED" not in batsu and 'id="source-maru"' not in batsu
        assert cell(row_of(batsu, "batsu"), "last-error") == "-"
        admin = web.login("admin").get("/health").text
        assert "AUTHENTICATIONFAILED" in cell(row_of(admin, "maru"), "last-error")
        assert {"maru", "batsu", "queue"} <= set(re.findall(r'id="source-(\w+)"', admin))
        assert 'id="source-maru"' not in web.login("contractor").get("/health").text


def test_backlog_and_oldest_waiting_from_the_consoles_clock(tmp_path):
    now = [next_day(working, 11)]
    with console(tmp_path, clock=lambda: now[0]) as web:
        stuck = web.ledger.receive("maru", raw_mail(), now=now[0] - timedelta(hours=5)).id
        for _ in range(MAX_ATTEMPTS):  # the pipeline crashing on it until it is quarantined
            entry = web.ledger.claim(now=now[0])
            assert entry is not None and entry.id == stuck
            web.ledger.fail(entry.id, "boom", entry.attempts)
        oldest = now[0] - timedelta(hours=3, minutes=12)
        web.ledger.receive("maru", raw_mail(), now=oldest)
        web.ledger.receive("maru", raw_mail(), now=now[0] - timedelta(minutes=4))
        web.ledger.receive("batsu", raw_mail(), now=now[0] - timedelta(days=2))
        now[0] += timedelta(minutes=30)
        row = row_of(web.login("maru-clerk").get("/health").text, "maru")
        assert cell(row, "waiting") == "2 件"
        assert cell(row, "quarantined") == "1 件"
        assert cell(row, "oldest") == f"{jst(oldest)}（3時間 42分前）"
        assert "未処理 2" in cell(row, "backlog") and "隔離 1" in cell(row, "backlog")
        batsu = row_of(web.login("batsu-clerk").get("/health").text, "batsu")
        assert cell(batsu, "waiting") == "1 件" and "（2日 0時間前）" in cell(batsu, "oldest")


def queue_mail(web, conn, ledger_id: int | None, kind: str = "reply") -> None:  # noqa: ANN001
    message_id = make_msgid(domain="maru.example.jp")
    raw = (f"From: keiyaku@maru.example.jp\r\nTo: tanto@maru-kensetsu.example.jp\r\n"
           f"Subject: 受付\r\nMessage-ID: {message_id}\r\n\r\n受け付けました\r\n").encode()
    outbox_for(web.config, web.store).insert(
        conn, kind, ["tanto@maru-kensetsu.example.jp"], raw, message_id, "受付", web.clock(),
        ledger_id=ledger_id)


def outbox_counts(html: str) -> dict[str, str]:
    return dict(re.findall(r'<td class="outbox-(\w+)">([^<]+)</td>', html))


def test_the_outbox_is_counted_under_the_accounts_scope(tmp_path):
    with console(tmp_path) as web:
        maru = web.ledger.receive("maru", raw_mail(), now=web.clock()).id
        batsu = web.ledger.receive("batsu", raw_mail(), now=web.clock()).id
        with web.store.engine.begin() as conn:
            queue_mail(web, conn, maru)
            queue_mail(web, conn, maru)
            queue_mail(web, conn, batsu)
            queue_mail(web, conn, None, kind="digest")
        clerk = web.login("maru-clerk").get("/health").text
        assert 'class="outbox"' in clerk
        assert outbox_counts(clerk) == {"queued": "2 件", "sent": "0 件", "failed": "0 件",
                                        "cancelled": "0 件"}
        assert 'class="muted unlinked"' not in clerk
        assert outbox_counts(web.login("batsu-clerk").get("/health").text)["queued"] == "1 件"
        admin = web.login("admin").get("/health").text
        assert outbox_counts(admin)["queued"] == "3 件"
        assert "受信メールに紐づかない送信（日次報告など）: 1 件" in admin


def window_text(html: str) -> str:
    return html.split('id="send-window"')[1].split("</div>")[0]


def test_a_saturday_shows_mondays_window(tmp_path):
    # A Saturday whose Monday is a working day, 14:30 JST: the window opens Monday 09:00.
    saturday = next_day(lambda d: d.weekday() == 5 and working(d + timedelta(days=2)), 14, 30)
    monday = saturday + timedelta(days=1, hours=18, minutes=30)
    assert monday.astimezone(TOKYO).strftime("%a %H:%M") == "Mon 09:00"
    with console(tmp_path, clock=lambda: saturday) as web:
        shown = window_text(web.login("maru-viewer").get("/health").text)
        assert f'<strong class="next-open">{jst(monday)}</strong>' in shown
        assert "あと 1日 18時間" in shown and "送信できる時間帯です" not in shown
        assert "月・火・水・木・金 09:00–17:00" in shown


OWN_HOURS = """[issuers.maru.submission]
to = "keiyaku@city.example.jp"
[issuers.maru.submission.window]
start = "13:00"
end = "15:00"
"""


def test_inside_the_window_it_says_so_and_an_issuers_own_hours_are_shown(tmp_path):
    morning = next_day(working, 10)
    with console(tmp_path, clock=lambda: morning, extra=OWN_HOURS) as web:
        default, own = window_text(web.login("contractor").get("/health").text).split("</p>")[:2]
        assert "送信できる時間帯です" in default and "本日 17:00 まで" in default
        assert "next-open" not in default
        # 〇〇市 takes submissions 13:00–15:00: today, three hours on.
        assert "〇〇市 への提出" in own and "13:00–15:00" in own
        assert f'<strong class="next-open">{jst(morning + timedelta(hours=3))}</strong>' in own
        clerk = window_text(web.login("maru-clerk").get("/health").text)
        assert "への提出" not in clerk  # submissions are the contractor side's

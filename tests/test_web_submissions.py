"""提出状況 in the console (issue 16): the contractor side's submissions, made by the real
contractor pipeline (a notice forwarded to the queue, sent through a real SMTP sink, the
issuer's answer in its thread), seen only by accounts with the contractor side; the state
filter, the search by number or 工事名, keyset pages that stay put while rows arrive, and
never the key; against a real uvicorn on loopback."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from html import escape
from zoneinfo import ZoneInfo

import pytest

from mailbot.daemon import Pipeline
from mailbot.outgoing import Outgoing
from mailbot.store import GuaranteeEvent
from mailbot.submit import table
from mailbot.web.format import jst
from parsers import Reader

from .test_submission_forms import mail
from .test_web_health import next_day, working
from .web_console import console

pytestmark = pytest.mark.clock

TOKYO = ZoneInfo("Asia/Tokyo")
KEY = "Z28YUEAJ38ux"
# 〇〇市 takes submissions at keiyaku@city.example.jp and answers from there; its answers
# are believed without DKIM/DMARC here (authentication is tests/test_contractor_auth.py's).
SUBMISSION = """[issuers.maru.submission]
to = "keiyaku@city.example.jp"
auth = "none"
"""


@pytest.fixture
def clock():
    return [next_day(working, 10)]  # inside the default send window


@pytest.fixture
def web(tmp_path, sink, clock):
    with console(tmp_path, extra=SUBMISSION, smtp_port=sink.settings.port,
                 clock=lambda: clock[0]) as running:
        running.store.apply([GuaranteeEvent("35075-00001M", "new", KEY, issuer="〇〇市",
                                            source="t")])
        yield running


def feed(web, raw: bytes) -> int:
    """`raw` received by the contractor's queue and decided by the real pipeline."""
    row = web.ledger.receive("queue", raw, now=web.clock()).id
    pipeline = Pipeline(web.config, web.store, web.ledger, Reader(), clock=web.clock)
    while pipeline.process_one():
        pass
    return row


def only_submission(web):
    with web.store.engine.connect() as conn:
        [row] = table.listing(conn)
    return row


def answer(in_reply_to: str, text: str, sender: str = "kensa@city.example.jp",
           subject: str = "Re: 【電子保証】〇〇浄水場修繕工事") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "denshi@maru-kensetsu.example.jp"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    message["In-Reply-To"] = in_reply_to
    message.set_content(text)
    return message.as_bytes()


def test_a_submission_sent_and_confirmed_shows_its_timeline_and_answer(web, sink, clock):
    notice = feed(web, mail("35075-00001M", "〇〇浄水場修繕工事"))
    row = only_submission(web)
    assert row.state == "queued" and row.issuer == "maru"
    created = clock[0]
    clock[0] += timedelta(minutes=5)
    Outgoing(web.config, web.store).flush(clock[0])
    assert [to for _from, to, _raw in sink.accepted] == [["keiyaku@city.example.jp"]]
    sent = clock[0]
    clock[0] += timedelta(days=1)
    with web.store.engine.begin() as conn:  # the reminder the Submitter writes
        table.reminded(conn, table.get(conn, row.id), clock[0])
    reminded = clock[0]
    clock[0] += timedelta(hours=2)
    answered_mail = feed(web, answer(row.message_id, "提出書類を確認しました。"))
    assert only_submission(web).state == "confirmed"

    page = web.login("contractor").get(f"/submissions/{row.id}")
    assert page.status_code == 200, page.text[:2000]
    html = page.text
    assert "<h1>提出 " in html and "35075-00001M" in html and "〇〇市" in html
    assert "keiyaku@city.example.jp" in html and escape(row.message_id) in html
    timeline = html.split('id="timeline"')[1].split("</ol>")[0]
    for moment in (created, sent, reminded, clock[0]):
        assert jst(moment) in timeline
    assert "返信待ちの連絡（1 回目）" in timeline
    box = html.split('id="answer"')[1].split("</div>")[0]
    assert "確認完了" in box and "提出メールへの返信" in box
    assert "Re: 【電子保証】〇〇浄水場修繕工事" in box and "kensa@city.example.jp" in box
    links = re.findall(r'<a class="mail-link" href="(/mails/\d+)"', html)
    assert links == [f"/mails/{notice}", f"/mails/{answered_mail}"]
    assert KEY not in html
    listed = web.login("contractor").get("/submissions").text
    assert f'class="submission-link" href="/submissions/{row.id}"' in listed
    assert "確認完了" in listed and KEY not in listed


def test_an_unproven_answer_is_shown_apart_and_changes_nothing(web, clock):
    feed(web, mail("35075-00001M", "〇〇浄水場修繕工事"))
    row = only_submission(web)
    Outgoing(web.config, web.store).flush(clock[0])
    # Its subject carries the guarantee's key (typed by whoever wrote it): never shown.
    feed(web, answer(row.message_id, "確認しました。", sender="kensa@evil.example.jp",
                     subject=f"Re: 認証キー {KEY}"))
    assert only_submission(web).state == "sent"
    html = web.login("contractor").get(f"/submissions/{row.id}").text
    assert KEY not in html and "Re: 認証キー Z28Y" in html
    box = html.split('id="answer"')[1].split("</div>")[0]
    assert "発注者からの返信は記録されていません" in box
    assert "発注者からと確認できない返信（1 件" in box and "kensa@evil.example.jp" in box
    assert "返信待ち" in html


def test_an_unroutable_notice_says_why(web):
    feed(web, mail("35075-09999M", "村道工事"))
    row = only_submission(web)
    assert row.state == "unroutable"
    html = web.login("contractor").get(f"/submissions/{row.id}").text
    assert "提出先不明" in html and 'class="error reason"' in html
    assert "提出先の発注者を特定できませんでした" in html


def test_only_the_contractor_side_sees_submissions(web):
    feed(web, mail("35075-00001M", "〇〇浄水場修繕工事"))
    row = only_submission(web)
    for name in ("maru-clerk", "maru-viewer", "batsu-clerk"):
        client = web.login(name)
        assert client.get("/submissions").status_code == 404
        assert client.get(f"/submissions/{row.id}").status_code == 404
        assert 'href="/submissions"' not in client.get("/account").text
    for name in ("contractor", "admin"):
        client = web.login(name)
        assert client.get(f"/submissions/{row.id}").status_code == 200
        assert client.get("/submissions/99999").status_code == 404
        assert client.get("/submissions/99999999999999999999").status_code == 404


def add_rows(web, count: int, *, state: str = "sent", project: str = "〇〇道路工事",
             start: int = 0) -> list[int]:
    """`count` submissions as the pipeline's `table.add` writes them, on one notice mail of
    the queue; their ids, oldest first."""
    notice = web.ledger.receive("queue", mail("35075-00001M", project), now=web.clock()).id
    with web.store.engine.begin() as conn:
        for n in range(start, start + count):
            number = f"35075-{n:05d}M"
            table.add(conn, hashlib.sha256(number.encode()).hexdigest(), {
                "ledger_id": notice, "guarantee_number": number, "kind": "前払金保証",
                "project_name": f"{project}{n}", "issuer": "maru", "found_by": "store",
                "to_addr": "keiyaku@city.example.jp", "subject": f"【電子保証】{project}{n}",
                "message_id": f"<s{n}@maru-kensetsu.example.jp>", "state": state,
                "reason": None, "created_at": web.clock()})
        return [r.id for r in table.listing(conn)][-count:]


def listed_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="submission-link" href="/submissions/(\d+)"',
                                       html)]


def next_link(html: str) -> str | None:
    found = re.search(r'<a class="next-page" href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_keyset_pages_stay_put_while_submissions_arrive(web):
    ids = add_rows(web, 120)
    client = web.login("contractor")
    first = client.get("/submissions").text
    assert listed_ids(first) == ids[::-1][:50]
    add_rows(web, 3, start=500)  # newer rows arrive while the clerk reads page 1
    second = client.get(next_link(first)).text
    assert listed_ids(second) == ids[::-1][50:100]
    third = client.get(next_link(second)).text
    assert listed_ids(third) == ids[::-1][100:] and next_link(third) is None
    assert "?before=" in next_link(first)
    assert len(listed_ids(client.get("/submissions").text)) == 50


def test_the_state_filter_and_the_search(web):
    sent = add_rows(web, 2, state="sent", project="〇〇橋梁補修工事")
    found = add_rows(web, 1, state="discrepancy", project="△△100%改修工事", start=10)
    client = web.login("contractor")
    page = client.get("/submissions", params={"state": "discrepancy"}).text
    assert listed_ids(page) == found
    assert '<option value="discrepancy" selected>相違あり</option>' in page
    assert 'id="q"' in page and 'id="search"' in page and 'id="state"' in page
    # The number, typed in full width, is found exactly; 工事名 by what it contains.
    by_number = client.get("/submissions", params={"q": "３５０７５－０００００Ｍ"}).text
    assert listed_ids(by_number) == [sent[0]]
    assert listed_ids(client.get("/submissions", params={"q": "橋梁"}).text) == sent[::-1]
    # LIKE's wildcards are searched as themselves.
    assert listed_ids(client.get("/submissions", params={"q": "100%"}).text) == found
    assert listed_ids(client.get("/submissions", params={"q": "%"}).text) == found
    assert listed_ids(client.get("/submissions", params={"q": "_"}).text) == []
    both = client.get("/submissions", params={"q": "橋梁", "state": "discrepancy"}).text
    assert listed_ids(both) == [] and "条件に当たる提出はありません" in both


def test_a_notice_submitted_again_lists_its_earlier_submission(web, clock):
    raw = mail("35075-00001M", "〇〇浄水場修繕工事")
    feed(web, raw)
    first = only_submission(web)
    Outgoing(web.config, web.store).flush(clock[0])
    sent_at = only_submission(web).sent_at
    assert sent_at is not None
    feed(web, answer(first.message_id, "金額に相違があります。"))
    assert only_submission(web).state == "discrepancy"
    clock[0] += timedelta(hours=1)
    again = feed(web, mail("35075-00001M", "〇〇浄水場修繕工事"))  # staff forward it again
    row = only_submission(web)
    assert row.state == "queued" and row.message_id != first.message_id
    html = web.login("contractor").get(f"/submissions/{row.id}").text
    earlier = html.split('class="earlier"')[1].split("</table>")[0]
    assert escape(first.message_id) in earlier and "送信済" in earlier
    assert jst(sent_at) in earlier
    assert f'<a class="mail-link" href="/mails/{again}"' in html
    assert "発注者からの返信は記録されていません" in html  # the new one is not answered yet

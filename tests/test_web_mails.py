"""受付一覧 and one mail's page in the console (issue 16): every mail in scope newest first,
each filter and each kind of search, keyset pages that stay stable when mail arrives, the
A/B scope (404 for another issuer's mail, its download and its number), the raw download
for operators only and audited, no key in clear on any page; the listing columns of
migration 0011 and their backfill; the list and search on PostgreSQL too. Mails are
received and decided by the real pipeline, against a real uvicorn on loopback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, insert, select

from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.retention import purge
from mailbot.store import Store
from mailbot.store.schema import ledger, web_audit
from mailbot.web.mail_list import Cursor
from mailbot.web.mail_view import clear_keys
from parsers.limits import Limits

from .conftest import TEST_SECRET
from .servers import create_database
from .test_review_ops import _at_revision
from .test_submission_forms import mail
from .test_web_guarantees import decide_mail, register
from .web_console import console

pytestmark = pytest.mark.clock

KEY = "Z28YUEAJ38ux"
OTHER_KEY = "Ab12Cd34Ef56"
START = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)  # the injected clock's first moment


class Clock:
    """The console's and the pipeline's clock; each mail moves it on a minute."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: float = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def web(tmp_path, clock):
    with console(tmp_path, clock=clock) as running:
        yield running


def plain(sender: str, subject: str, text: str = "よろしくお願いします。\n") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "keiyaku@maru.example.jp"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="maru-kensetsu.example.jp")
    message.set_content(text)
    return message.as_bytes()


def deliver(web, clock: Clock, mailbox: str, raw: bytes) -> int:
    clock.tick()
    return decide_mail(web, mailbox, raw)


def rows(html: str) -> list[int]:
    """The ledger ids of the listed mails, in the table's order."""
    body = html.split('<table class="mails">', 1)[-1]
    return [int(i) for i in re.findall(r'class="mail-link" href="/mails/(\d+)"', body)]


def listed(client, **params: str) -> list[int]:
    answer = client.get("/mails", params=params)
    assert answer.status_code == 200, answer.text[:3000]
    return rows(answer.text)


@pytest.fixture
def mails(web, clock):
    """〇〇市: a verified mail, one with a wrong key (to review), a plain mail from
    another sender; △△町: a mail citing its own guarantee."""
    register(web, "35075-00001M", "〇〇市")
    register(web, "35075-00002M", "△△町")
    verified = deliver(web, clock, "maru", mail("35075-00001M", "〇〇浄水場修繕工事"))
    wrong = deliver(web, clock, "maru", mail("35075-00001M", "〇〇浄水場修繕工事", key=OTHER_KEY))
    other = deliver(web, clock, "maru", plain("jimu@sankaku-kogyo.example.jp", "ご相談"))
    batsu = deliver(web, clock, "batsu", mail("35075-00002M", "△△町道改良工事"))
    return {"verified": verified, "wrong": wrong, "other": other, "batsu": batsu}


def test_the_list_shows_mail_in_scope_newest_first_with_its_columns(web, mails):
    clerk = web.login("maru-clerk")
    answer = clerk.get("/mails")
    assert answer.status_code == 200
    html = answer.text
    assert rows(html) == [mails["other"], mails["wrong"], mails["verified"]]  # no △△町 mail
    row = html.split(f'href="/mails/{mails["wrong"]}"', 1)[1].split("</tr>", 1)[0]
    assert "35075-00001M" in row and "判定済" in row and "認証キーが一致しません" in row
    assert "tanto@maru.example.jp" in row and "認証キーのお知らせ" in row and "maru" in row
    wall_jst = (START + timedelta(minutes=3, hours=9)).strftime("%Y-%m-%d %H:%M")
    assert f"{wall_jst} JST" in html.split(f'href="/mails/{mails["other"]}"', 1)[1][:40]
    for selector in ('id="mail-search"', 'id="q"', 'id="state"', 'id="mailbox"',
                     'id="issuer"', 'id="outcome"', 'id="from"', 'id="to"', 'id="search"'):
        assert selector in html
    assert 'value="batsu"' not in html  # neither △△町's mailbox nor the issuer is offered
    assert rows(web.login("admin").get("/mails").text)[0] == mails["batsu"]


def test_each_filter(web, clock, mails):
    stuck = web.ledger.receive("maru", plain("tanto@maru.example.jp", "壊れたメール"),
                               now=clock.tick()).id
    quarantine(web.ledger, stuck, clock)
    first = plain("tanto@maru.example.jp", "二度届いたメール")
    original = deliver(web, clock, "maru", first)
    copy = deliver(web, clock, "maru", b"Received: from relay.example.jp\r\n" + first)
    # received after the last pipeline run: not processed yet
    pending = web.ledger.receive("maru", plain("tanto@maru.example.jp", "未処理のメール"),
                                 now=clock.tick()).id
    admin = web.login("admin")
    clerk = web.login("maru-clerk")
    assert listed(clerk, state="pending") == [pending]
    assert listed(clerk, state="quarantined") == [stuck]
    assert listed(clerk, state="duplicate") == [copy]
    decided = listed(clerk, state="decided")
    assert mails["verified"] in decided and original in decided and pending not in decided
    review = listed(clerk, state="review")
    assert mails["wrong"] in review and mails["verified"] not in review
    assert listed(clerk, outcome="key_mismatch") == [mails["wrong"]]
    assert listed(clerk, outcome="no_notice_found")[-1] == mails["other"]
    assert listed(admin, mailbox="batsu") == [mails["batsu"]]
    assert listed(admin, issuer="batsu") == [mails["batsu"]]
    assert mails["batsu"] not in listed(admin, issuer="maru")
    assert pending in listed(admin, issuer="maru")  # not decided: its mailbox's issuer
    # Dates are JST days, both ends inclusive: the clock started at 09:30 JST on 11-30.
    jst_day = (START + timedelta(hours=9)).date()
    assert len(listed(clerk, **{"from": jst_day.isoformat(), "to": jst_day.isoformat()})) >= 5
    assert listed(clerk, to=(jst_day - timedelta(days=1)).isoformat()) == []
    assert listed(clerk, **{"from": (jst_day + timedelta(days=1)).isoformat()}) == []
    # A value the form never offers is a Japanese message, not an error page.
    for bad in ({"mailbox": "batsu"}, {"issuer": "batsu"}, {"state": "x"},
                {"outcome": "nothing"}, {"from": "2026-13-01"}, {"from": "2026-12-02",
                                                                 "to": "2026-12-01"}):
        answer = clerk.get("/mails", params=bad)
        assert answer.status_code == 400 and 'class="error"' in answer.text, bad
        assert rows(answer.text) == []


def quarantine(book: Ledger, row_id: int, clock: Clock) -> None:
    """`row_id` crashed the pipeline three times (as `Ledger.fail` records it)."""
    for _ in range(3):
        entry = book.claim(now=clock())
        assert entry is not None and entry.id == row_id
        book.fail(row_id, "Traceback: boom", attempt=entry.attempts)


def test_each_kind_of_search(web, mails):
    clerk = web.login("maru-clerk")
    assert set(listed(clerk, q="３５０７５－００００１ｍ")) == {mails["verified"], mails["wrong"]}
    assert set(listed(clerk, q="浄水場")) == {mails["verified"], mails["wrong"]}
    assert set(listed(clerk, q="〇〇建設")) == {mails["verified"], mails["wrong"]}
    assert listed(clerk, q="SANKAKU-kogyo") == [mails["other"]]
    assert listed(clerk, q="%") == [] and listed(clerk, q="_") == []  # wildcards escaped
    assert listed(clerk, q="35075-00009M") == []


def test_keyset_pages_stay_stable_when_mail_arrives(web, clock):
    ids = [deliver(web, clock, "maru", plain(f"tanto{n}@maru.example.jp", f"問い合わせ {n}"))
           for n in range(53)]
    clerk = web.login("maru-clerk")
    first = clerk.get("/mails", params={"q": "maru.example.jp"})
    assert rows(first.text) == ids[::-1][:50]
    link = re.search(r'class="next-page" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    assert "OFFSET" not in link.upper() and "q=maru.example.jp" in link
    newer = deliver(web, clock, "maru", plain("tanto@maru.example.jp", "あとから届いたメール"))
    second = clerk.get(link)
    assert rows(second.text) == ids[::-1][50:]  # neither shifted nor repeated
    assert 'class="next-page"' not in second.text
    assert rows(clerk.get("/mails").text)[0] == newer
    for cursor in ("garbage", "!!!", "MTIz", "LTEuLTE"):
        bad = clerk.get("/mails", params={"after": cursor})
        assert bad.status_code == 400 and "ページの指定が正しくありません" in bad.text


def test_another_issuer_s_mail_is_404_by_url_search_and_download(web, mails):
    clerk = web.login("maru-clerk")
    batsu = mails["batsu"]
    assert clerk.get(f"/mails/{batsu}").status_code == 404
    assert clerk.get(f"/mails/{batsu}/raw").status_code == 404
    assert clerk.get("/mails/999999").status_code == 404
    assert listed(clerk, q="35075-00002M") == [] and listed(clerk, q="△△町道") == []
    assert web.login("batsu-clerk").get(f"/mails/{batsu}").status_code == 200
    viewer = web.login("maru-viewer")
    assert viewer.get(f"/mails/{mails['verified']}").status_code == 200
    assert 'id="raw-download"' not in viewer.get(f"/mails/{mails['verified']}").text
    assert viewer.get(f"/mails/{mails['verified']}/raw").status_code == 403
    assert audit(web, "raw_downloaded") == []


def audit(web, action: str) -> list[tuple[str, str, int]]:
    with web.store.engine.connect() as conn:
        return [(r.account, r.target, r.ledger_id) for r in conn.execute(
            select(web_audit).where(web_audit.c.action == action).order_by(web_audit.c.id))]


def test_the_mail_page_masks_every_key_and_only_the_download_has_it(web, clock, mails):
    message = message_from_bytes(mail("35075-00001M", "〇〇浄水場修繕工事"), policy=policy.default)
    del message["Subject"]
    message["Subject"] = f"認証キー {KEY}"  # typed by the contractor: RFC 2047 on the wire
    typed = message.as_bytes()
    assert b"=?utf-8?" in typed
    row = deliver(web, clock, "maru", typed)
    outgoing = Outgoing(web.config, web.store)
    assert outgoing.queue(clock()) >= 1
    clerk = web.login("maru-clerk")
    page = clerk.get(f"/mails/{row}")
    assert page.status_code == 200
    html = page.text
    assert KEY not in html and "Z28Y********" in html
    for section in ('id="headers"', 'id="notices"', 'id="rules"', 'id="reply"',
                    'id="action"', 'id="audit"', '<span class="state">判定済'):
        assert section in html
    headers = html.split('id="headers"', 1)[1].split("</section>", 1)[0]
    assert "tanto@maru.example.jp" in headers and "Message-ID" in headers
    assert "認証キー Z28Y********" in headers  # the RFC 2047 subject decoded, the key masked
    assert "number_exists" in html and "問題なし" in html and "〇〇浄水場修繕工事" in html
    assert "保証契約番号 35075-00001M の電子保証を確認しました" in html
    reply = html.split('id="reply"', 1)[1].split("</section>", 1)[0]
    assert "送信待ち" in reply and "tanto@maru.example.jp" in reply
    assert "35075-00001M" in reply and "reply-body" in reply  # the rendered text itself
    assert 'id="raw-download"' in html
    raw = clerk.get(f"/mails/{row}/raw")
    assert raw.status_code == 200 and raw.headers["content-type"] == "message/rfc822"
    assert f'filename="mail-{row}.eml"' in raw.headers["content-disposition"]
    assert KEY.encode() in raw.content
    assert audit(web, "raw_downloaded") == [("maru-clerk", f"ledger:{row}", row)]
    after = clerk.get(f"/mails/{row}").text
    assert "raw_downloaded" in after.split('id="audit"', 1)[1] and KEY not in after
    # A mail not decided yet: its subject is masked on the list and the page as well.
    waiting = web.ledger.receive("maru", plain("tanto@maru.example.jp", f"認証キー {KEY}"),
                                 now=clock.tick()).id
    for path in ("/mails", f"/mails/{waiting}"):
        shown = clerk.get(path).text
        assert KEY not in shown and "Z28Y********" in shown, path


def test_a_purged_mail_says_so_and_cannot_be_downloaded(tmp_path, clock):
    with console(tmp_path, clock=clock, extra="[retention]\nraw_days = 1\n") as web:
        row = deliver(web, clock, "maru", plain("tanto@maru.example.jp", "古いメール"))
        clock.tick(60 * 24 * 2)
        assert purge(web.config, web.store, clock()).files
        clerk = web.login("maru-clerk")
        html = clerk.get(f"/mails/{row}").text
        assert "保存期間を過ぎたため" in html and "古いメール" in html
        assert 'id="raw-download"' not in html
        assert clerk.get(f"/mails/{row}/raw").status_code == 404


def test_the_list_and_search_work_on_postgresql(tmp_path, clock, pg_server):
    url = create_database(pg_server, "web_mails")
    with console(tmp_path, clock=clock, store_url=url) as web:
        register(web, "35075-00001M", "〇〇市")
        ids = [deliver(web, clock, "maru", mail("35075-00001M", "〇〇浄水場修繕工事", key=k))
               for k in (KEY, OTHER_KEY)]
        clerk = web.login("maru-clerk")
        assert listed(clerk) == ids[::-1]
        assert listed(clerk, q="35075-00001m") == ids[::-1]
        assert listed(clerk, q="浄水場", outcome="key_mismatch", state="review") == [ids[1]]
        jst_day = (clock() + timedelta(hours=9)).date().isoformat()
        assert listed(clerk, mailbox="maru", issuer="maru", **{"from": jst_day}) == ids[::-1]
        with web.store.engine.connect() as conn:
            last = conn.execute(select(ledger.c.received_at).where(ledger.c.id == ids[1])).scalar()
        assert listed(clerk, after=Cursor(last, ids[1]).encode()) == [ids[0]]  # the keyset


# -- migration 0011: the listing columns ---------------------------------------------------
def test_the_migration_fills_the_listing_columns_from_earlier_decisions(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _at_revision(url, "0010_web")
    old = create_engine(url)
    decisions = [
        '{"status": "discrepancy", "outcomes": ["key_mismatch"], "folder": "電子保証/要確認",'
        ' "problems": [{"code": "no_text_layer", "origin": "attachment:a.pdf"}]}',
        '{"status": "verified", "outcomes": ["verified"], "problems": [], "folder": "done"}',
        '["not", "a record"]', "not json", None]
    with old.begin() as conn:
        tables = MetaData()
        tables.reflect(conn)
        old_ledger = tables.tables["ledger"]  # as 0010 left it: no listing columns yet
        assert "status" not in old_ledger.c
        for n, decision in enumerate(decisions):
            conn.execute(insert(old_ledger).values(mailbox="maru", sha256=f"{n:064d}", spool_name=f"s{n}", size=1,
                        received_at=START, state="decided" if decision else "received",
                        attempts=1, action_state="none", reply_wanted=True, deferrals=0,
                        decision=decision))
    old.dispose()
    Store.open(url, secret=TEST_SECRET).close()  # opening migrates to the head
    engine = create_engine(url)
    with engine.connect() as conn:
        got = [(r.status, r.outcomes, r.folder) for r in conn.execute(
            select(ledger.c.status, ledger.c.outcomes, ledger.c.folder).order_by(ledger.c.id))]
    engine.dispose()
    assert got == [("discrepancy", " key_mismatch no_text_layer ", "電子保証/要確認"),
                   ("verified", " verified ", "done"), (None, None, None), (None, None, None),
                   (None, None, None)]


def test_a_new_decision_fills_the_listing_columns(tmp_path, clock):
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}", secret=TEST_SECRET)
    try:
        book = Ledger(store.engine, Spool(Path(tmp_path / "spool")))
        row = book.receive("maru", plain("tanto@maru.example.jp", "x"), now=clock()).id
        entry = book.claim(now=clock())
        assert entry is not None
        book.decide(row, {"status": "discrepancy", "outcomes": [], "folder": "要確認",
                          "problems": [{"code": "no_notice_found"}],
                          "routing": {"issuer": "maru"}}, None, None, now=clock())
        with store.engine.connect() as conn:
            got = conn.execute(select(ledger.c.status, ledger.c.outcomes, ledger.c.folder,
                                      ledger.c.issuer).where(ledger.c.id == row)).one()
        assert tuple(got) == ("discrepancy", " no_notice_found ", "要確認", "maru")
    finally:
        store.close()


def test_hostile_header_bytes_do_not_break_the_page(web, clock):
    raw = (b"From: =?iso-2022-jp?b?GyRCJDMbKEI=?= \xff\xfe\x00 <tanto@maru.example.jp>\r\n"
           b"To: \x80\x81 =?utf-8?q?=E3=81?=\r\n"
           b"Subject: =?utf-8?b?!!!?= \x1b$B$3\x1b(B \xe8\xaa\x8d\xe8\xa8\xbc\r\n"
           b"Date: not a date\r\nMessage-ID: <\x00x@maru.example.jp>\r\n"
           b"Reply-To: " + b"a" * 5000 + b"\r\n\r\nbody\r\n")
    row = deliver(web, clock, "maru", raw)
    clerk = web.login("maru-clerk")
    page = clerk.get(f"/mails/{row}")
    assert page.status_code == 200, page.text[:2000]
    headers = page.text.split('id="headers"', 1)[1].split("</section>", 1)[0]
    assert "tanto@maru.example.jp" in headers and "not a date" in headers
    assert "\x00" not in page.text
    assert row in listed(clerk, q="tanto@maru")


def test_keys_count_as_unknown_when_the_reading_finds_less_than_the_decision():
    """A notice the decision read but the page's reading did not (a PDF worker that failed)
    would leave its key unmasked: the page then shows no raw header at all."""
    raw = mail("35075-00001M", "〇〇浄水場修繕工事")
    assert clear_keys(raw, {"notices": [{"guarantee_number": "35075-00001M"}]}) == [KEY]
    assert clear_keys(raw, {"notices": [{}, {}]}) is None
    assert clear_keys(raw, {"status": "recorded", "notices": []}) == []  # nothing to learn


def test_the_pages_reading_is_bounded_as_a_whole_not_part_by_part(tmp_path):
    """A mail of many parts cannot hold the mail page: one timeout bounds the whole reading
    (hostile review: 200 slow PDFs, each under its own timeout, held a page for an hour).
    Many typed notices read in the web process's own thread had no bound at all."""
    body = "".join(f"保証契約番号 35075-{i:05d}M\n認証キー {KEY}\n" for i in range(1, 3000))
    message = EmailMessage()
    message["From"], message["Subject"] = "tanto@maru.example.jp", "多数"
    message.set_content(body * 4)
    raw = message.as_bytes()
    record = {"notices": [{"guarantee_number": "35075-00001M"}]}
    assert clear_keys(raw, record) == [KEY]  # read in full under the usual bound
    assert clear_keys(raw, record, Limits(pdf_timeout_s=0.001)) is None  # over it: unknown

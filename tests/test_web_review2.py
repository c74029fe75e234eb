"""Hostile review of 受付一覧 and one mail's page (issue 16): a careless clerk's parameters
answer a Japanese 4xx page, never a 500; a key a contractor typed into From or a long header
is never shown in clear. Real uvicorn via `tests/web_console.py`, mails decided by the real
pipeline."""

from __future__ import annotations

import base64

import pytest

from .servers import create_database
from .test_submission_forms import mail
from .test_web_guarantees import register
from .test_web_mails import KEY, START, Clock, deliver, plain
from .web_console import console

pytestmark = pytest.mark.clock


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
def web(tmp_path, clock):
    with console(tmp_path, clock=clock) as running:
        yield running


@pytest.mark.parametrize("params", [{"from": "0001-01-01"}, {"to": "9999-12-31"},
                                    {"from": "0001-01-01", "to": "9999-12-31"}])
def test_dates_at_the_ends_of_the_calendar_are_a_message(web, params):
    answer = web.login("maru-clerk").get("/mails", params=params)
    assert answer.status_code == 400 and 'class="error"' in answer.text, answer.text[:500]


def test_a_cursor_with_a_huge_id_or_time_is_a_message(web):
    clerk = web.login("maru-clerk")
    for raw in (f"0.{10**30}", f"{2**63}.1", f"{-(2**63)}.1"):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        answer = clerk.get("/mails", params={"after": cursor})
        assert answer.status_code == 400, (raw, answer.status_code)
        assert "ページの指定が正しくありません" in answer.text


def test_a_huge_mail_id_is_404(web):
    clerk = web.login("admin")
    for path in (f"/mails/{10**30}", f"/mails/{10**30}/raw"):
        assert clerk.get(path).status_code == 404, path


def test_a_key_cut_by_the_header_limit_is_not_shown_in_part(web, clock):
    register(web, "35075-00001M", "〇〇市")
    raw = mail("35075-00001M", "〇〇浄水場修繕工事").replace(
        b"Subject: ", b"Subject: " + b"a " * 997 + KEY.encode() + b" ")
    row = deliver(web, clock, "maru", raw)
    page = web.login("maru-clerk").get(f"/mails/{row}")
    assert page.status_code == 200
    assert KEY[:6] not in page.text


def test_a_nul_in_the_search_is_not_a_500_on_postgresql(tmp_path, clock, pg_server):
    url = create_database(pg_server, "web_review2")
    with console(tmp_path, clock=clock, store_url=url) as web:
        deliver(web, clock, "maru", plain("jimu@sankaku-kogyo.example.jp", "ご相談"))
        clerk = web.login("maru-clerk")
        for q in ("sankaku\x00", "\x00", "35075-00001M\x00"):
            answer = clerk.get("/mails", params={"q": q})
            assert answer.status_code in (200, 400), (q, answer.status_code)
            assert "<!doctype html>" in answer.text


def test_a_key_flush_against_letters_in_from_is_masked_on_the_list(web, clock):
    """The page's redactor looks up whole runs only; the list must mask the sender itself."""
    register(web, "35075-00001M", "〇〇市")
    raw = mail("35075-00001M", "〇〇浄水場修繕工事").replace(
        b"From: tanto@maru.example.jp", f"From: KEY{KEY} <tanto@maru.example.jp>".encode())
    decided = deliver(web, clock, "maru", raw)
    pending = web.ledger.receive("maru", plain(f"KEY{KEY} <jimu@maru.example.jp>", "ご相談"),
                                 now=clock.tick()).id
    clerk = web.login("maru-clerk")
    listing = clerk.get("/mails")
    assert f"/mails/{decided}" in listing.text and f"/mails/{pending}" in listing.text
    assert KEY not in listing.text
    for row in (decided, pending):
        page = clerk.get(f"/mails/{row}")
        assert page.status_code == 200 and KEY not in page.text, row


def test_bidi_controls_in_from_and_subject_cannot_spoof_the_list_or_the_page(web, clock):
    """U+202E would show 'moc.live@' as 'evil.com'-like text reversed: a forged address."""
    row = deliver(web, clock, "maru", plain("\u202epj.elpmaxe.uram@otnat\u202c <x@evil.example>",
                                            "請求書\u2067確認\u2069"))
    clerk = web.login("maru-clerk")
    for html in (clerk.get("/mails").text, clerk.get(f"/mails/{row}").text):
        assert f"/mails/{row}" in html or "otnat" in html
        for control in ("\u202e", "\u202c", "\u2067", "\u2069"):
            assert control not in html

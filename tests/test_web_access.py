"""Who gets into the console and how: log in, sessions, CSRF, throttling, security headers
(issue 16), against a real uvicorn on loopback."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import TimestampSigner

from mailbot.web.accounts import AccountError, Accounts
from mailbot.web.audit import Audit
from mailbot.web.server import Background
from mailbot.web.sessions import Sessions

from .web_console import PASSWORD, Client, console


@pytest.fixture
def web(tmp_path):
    with console(tmp_path) as running:
        yield running


def test_a_page_without_a_session_goes_to_the_log_in(web):
    answer = web.client().get("/account")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Faccount"


def test_log_in_then_pages_then_log_out(web):
    clerk = web.client()
    answer = clerk.login("maru-clerk")
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert clerk.get("/").headers["location"] == "/mails"
    out = clerk.post("/logout")
    assert out.status_code == 303
    assert clerk.get("/account").status_code == 303  # back to the log in


def test_log_out_ends_the_session_for_a_copy_of_its_cookie_too(web):
    """A copy of the cookie (a proxy log, a shared machine) is refused once its session
    logged out; the same account's session on another machine goes on."""
    clerk = web.login("maru-clerk")
    elsewhere = web.login("maru-clerk")
    thief = web.client()
    thief.http.cookies.update(clerk.http.cookies)
    assert thief.get("/account").status_code == 200
    assert clerk.post("/logout").status_code == 303
    assert thief.get("/account").status_code == 303  # back to the log in
    assert elsewhere.get("/account").status_code == 200
    logged = [(e.account, e.action) for e in Audit(web.store.engine).recent()]
    assert ("maru-clerk", "logout") in logged


def test_a_session_cookie_without_a_server_session_is_refused(web):
    """A cookie signed with the right key but naming no session the server holds (the
    cookie-only form before 0013_web_sessions) does not log anyone in."""
    secret = web.store.derived_key("web session").hex()
    payload = base64.b64encode(json.dumps(
        {"account": "maru-clerk", "issued": datetime.now(UTC).timestamp() + 60,
         "csrf": "x", "sid": "made-up"}).encode())
    forged = web.client()
    forged.http.cookies.set("mailbot_session", TimestampSigner(secret).sign(payload).decode())
    assert forged.get("/account").status_code == 303


def test_a_wrong_password_says_so_in_japanese_and_names_neither(web):
    answer = web.client().login("maru-clerk", "wrong password 123")
    assert answer.status_code == 401
    assert "アカウント名またはパスワードが違います" in answer.text
    assert web.client().login("nobody", "wrong password 123").status_code == 401


def test_the_sixth_wrong_password_in_a_minute_is_throttled_even_when_right(web):
    client = web.client()
    for _ in range(5):
        assert client.login("maru-clerk", "wrong password 123").status_code == 401
    answer = client.login("maru-clerk", PASSWORD)
    assert answer.status_code == 429
    assert "しばらく受け付けません" in answer.text
    # Another account from the same address is throttled too (per address) ...
    assert web.client().login("batsu-clerk").status_code == 429


def test_two_consoles_on_one_store_count_the_same_failures(tmp_path, store_url):
    """Two nodes' consoles behind one proxy (or one console restarted): five failures on
    the first throttle the sixth try on the second, on SQLite and PostgreSQL."""
    with console(tmp_path, store_url=store_url) as web:
        other = Background(web.config, web.store, clock=web.clock, listen=("127.0.0.1", 0))
        other.start()
        try:
            first, second = web.client(), Client(other.url)
            for _ in range(5):
                assert first.login("maru-clerk", "wrong password 123").status_code == 401
            assert second.login("maru-clerk").status_code == 429
            second.close()
        finally:
            other.stop()


def test_the_throttle_ends_after_its_window(tmp_path):
    now = [datetime(2026, 12, 2, 1, 0, tzinfo=UTC)]
    with console(tmp_path, clock=lambda: now[0]) as web:
        client = web.client()
        for _ in range(5):
            client.login("maru-clerk", "wrong password 123")
        assert client.login("maru-clerk").status_code == 429
        now[0] += timedelta(seconds=61)
        assert client.login("maru-clerk").status_code == 303


def test_a_post_without_the_csrf_token_is_refused(web):
    clerk = web.login("maru-clerk")
    assert clerk.post("/logout", csrf=False).status_code == 403
    assert clerk.post("/logout", {"csrf": "forged"}).status_code == 403
    assert clerk.get("/account").status_code == 200  # still logged in
    # The log in form itself needs its token: a cross-site log in is refused.
    fresh = web.client()
    answer = fresh.http.post("/login", data={"name": "maru-clerk", "password": PASSWORD})
    assert answer.status_code == 403


def test_every_answer_carries_the_security_headers(web):
    for answer in (web.client().get("/login"), web.login("admin").get("/account"),
                   web.client().get("/static/console.css"), web.client().get("/nowhere")):
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"


def test_a_changed_password_or_a_disabled_account_ends_its_sessions(web):
    clerk = web.login("maru-clerk")
    accounts = Accounts(web.store.engine)
    later = datetime.now(UTC) + timedelta(seconds=1)
    accounts.set_password("maru-clerk", "another long password", later)
    assert clerk.get("/account").status_code == 303
    viewer = web.login("maru-viewer")
    accounts.set_disabled("maru-viewer", True, later)
    assert viewer.get("/account").status_code == 303
    assert web.client().login("maru-viewer").status_code == 401


def test_log_in_goes_back_only_to_a_path_of_this_site(web):
    client = web.client()
    from .web_console import login_form_token
    token = login_form_token(client.get("/login?next=//evil.example.jp/").text)
    answer = client.http.post("/login", data={"name": "admin", "password": PASSWORD,
                                              "csrf": token, "next": "//evil.example.jp/"})
    assert answer.headers["location"] == "/"


def test_accounts_refuse_short_passwords_bad_names_and_duplicates(web):
    accounts = Accounts(web.store.engine)
    now = datetime.now(UTC)
    with pytest.raises(AccountError, match="12 characters"):
        accounts.add("short", "abc", "viewer", ("maru",), False, now)
    with pytest.raises(AccountError, match="account name"):
        accounts.add("<script>", PASSWORD, "viewer", ("maru",), False, now)
    with pytest.raises(AccountError, match="exists already"):
        accounts.add("admin", PASSWORD, "viewer", ("maru",), False, now)
    with pytest.raises(AccountError, match="role"):
        accounts.add("root", PASSWORD, "root", ("maru",), False, now)
    stored = web.store.engine.connect().exec_driver_sql(
        "select password_hash from web_accounts where name = 'admin'").scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(web):
    here, there = web.login("maru-clerk"), web.login("maru-clerk")
    wrong = here.post("/account/password", {"current": "nope", "new": "x" * 12, "again": "x" * 12})
    assert wrong.status_code == 400 and "現在のパスワードが違います" in wrong.text
    done = here.post("/account/password",
                     {"current": PASSWORD, "new": "a new long password", "again": "a new long password"})
    assert done.status_code == 303
    assert here.get("/account").status_code == 200
    assert there.get("/account").status_code == 303
    assert web.client().login("maru-clerk", "a new long password").status_code == 303


def test_a_session_lasts_its_hours_after_its_last_use_not_after_its_log_in(store):
    """`[web] session_hours` without use (docs/console.md): a session used after an hour is
    still live seven hours later, and one left alone for eight is not."""
    sessions = Sessions(store.engine, hours=8)
    start = datetime.now(UTC)
    used = sessions.open("maru-clerk", "127.0.0.1", start)
    idle = sessions.open("maru-clerk", "127.0.0.1", start)
    assert sessions.live(used, "maru-clerk", start + timedelta(hours=1))
    assert sessions.live(used, "maru-clerk", start + timedelta(hours=8, minutes=30))
    assert not sessions.live(idle, "maru-clerk", start + timedelta(hours=8, minutes=30))
    assert not sessions.live(used, "maru-viewer", start + timedelta(hours=2))
    assert sessions.end(used, start + timedelta(hours=9))
    assert not sessions.live(used, "maru-clerk", start + timedelta(hours=9))
    assert not sessions.end(used, start + timedelta(hours=9))

"""The console in a real headless Chromium (issue 16): a clerk's day, page by page, with a
screenshot of each page in test-artifacts/screenshots/ (tests/browser.py)."""

from __future__ import annotations

import pytest

from .browser import chromium
from .web_console import PASSWORD, console


@pytest.fixture
def web(tmp_path):
    with console(tmp_path) as running:
        yield running


@pytest.fixture
def browser(web, tmp_path, request):
    with chromium(web.url, tmp_path / "chromium-profile", request.node.name) as b:
        yield b


def test_log_in_see_ones_account_and_log_out(web, browser):
    browser.open("/account")
    assert browser.path.startswith("/login")
    browser.shot("login")
    browser.fill("#name", "maru-clerk")
    browser.fill("#password", "wrong password 123")
    browser.click("#login")
    browser.wait_for(lambda: "パスワードが違います" in browser.text(), "the refusal")
    browser.login("maru-clerk", PASSWORD)
    browser.open("/account")
    assert "maru-clerk" in browser.text() and "〇〇市" in browser.text()
    assert "△△町" not in browser.text()
    browser.shot("account")
    browser.click("header form.logout button")
    browser.wait_for(lambda: browser.path.startswith("/login"), "logged out")

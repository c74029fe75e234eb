"""The console in a real headless Chromium (issue 16): a clerk's day, page by page, with a
screenshot of each page in test-artifacts/screenshots/ (tests/browser.py)."""

from __future__ import annotations

import pytest

from mailbot.daemon import Pipeline
from mailbot.outgoing import Outgoing, outbox_for
from mailbot.store import GuaranteeEvent
from parsers import Reader

from .browser import chromium
from .test_submission_forms import mail
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


# -- a clerk's day ---------------------------------------------------------------------------

KEY = "Z28YUEAJ38ux"


def register(web) -> None:
    web.store.apply([GuaranteeEvent("35075-00001M", "new", KEY, kind="前払金保証", issuer="〇〇市",
                                    contractor="〇〇建設株式会社",
                                    project_name="〇〇浄水場修繕工事", source="t")])


def settle(web) -> None:
    """What the daemon would do next: decide every waiting mail, render the replies."""
    pipeline = Pipeline(web.config, web.store, web.ledger, Reader(), clock=web.clock)
    while pipeline.process_one():
        pass
    Outgoing(web.config, web.store).queue(web.clock())


def quarantine(web, raw: bytes) -> int:
    """`raw` received and crashed on until quarantined, as our bug would leave it."""
    row = web.ledger.receive("maru", raw, now=web.clock()).id
    while True:
        entry = web.ledger.claim(now=web.clock())
        assert entry is not None and entry.id == row
        if web.ledger.fail(row, "RuntimeError: a bug of ours") == "quarantined":
            return row


def test_find_a_mail_by_number_open_it_and_act_on_what_needs_a_person(web, browser):
    register(web)
    decided = web.ledger.receive("maru", mail("35075-00001M", "〇〇浄水場修繕工事"),
                                 now=web.clock()).id
    settle(web)
    stuck = quarantine(web, mail("35075-00001M", "〇〇浄水場修繕工事", key="Ab12Cd34Ef56"))
    [reply] = [r for r in outbox_for(web.config, web.store).rows("queued") if r.ledger_id == decided]

    browser.login("maru-clerk", PASSWORD)
    browser.open("/mails")
    browser.shot("mails")
    browser.fill("#q", "35075-00001M")
    browser.click("#search")
    browser.wait_for(lambda: "q=35075-00001M" in browser.path, "the search")
    links = [a.get_attribute("href") for a in browser.all("a.mail-link")]
    assert any(h.endswith(f"/mails/{decided}") for h in links), links
    browser.shot("mails-search")
    browser.find(f'a.mail-link[href="/mails/{decided}"]').click()
    browser.wait_for(lambda: browser.path == f"/mails/{decided}", "the mail's page")
    assert "35075-00001M" in browser.find("#notices").text
    assert KEY not in browser.text() and "Z28Y" in browser.find("#notices").text
    assert browser.find("#rules").text and browser.find("#reply").text
    browser.shot("mail")

    # 要対応: the quarantined mail is retried, and the daemon's next turn decides it.
    browser.open("/attention")
    browser.shot("attention")
    browser.find(f"#item-quarantine-{stuck} button[value=retry]").click()
    browser.wait_for(lambda: bool(browser.all("p.flash")), "the retry's message")
    assert web.ledger.get(stuck).state == "received"
    settle(web)
    browser.open(f"/mails/{stuck}")
    browser.wait_for(lambda: "判定済" in browser.find("span.state").text, "the mail decided")
    assert "retried" in browser.find("#audit").text or "maru-clerk" in browser.find("#audit").text
    browser.shot("mail-retried")

    # The stored reply of the first mail, cancelled before it goes out.
    browser.open("/attention")
    browser.find(f"#item-outbox-{reply.id} button[value=cancel]").click()
    browser.wait_for(lambda: bool(browser.all("p.flash")), "the cancel's message")
    assert outbox_for(web.config, web.store).get(reply.id).state == "cancelled"
    browser.shot("attention-cancelled")

    for path, name in (("/guarantees/35075-00001M", "guarantee"), ("/health", "health")):
        browser.open(path)
        assert browser.find("h1").text
        browser.shot(name)


def test_an_import_with_an_error_names_line_and_column_and_writes_nothing(web, browser,
                                                                          tmp_path):
    bad = tmp_path / "export.csv"
    bad.write_text("保証契約番号,認証キー,商品名,発注者名,請負契約者,工事名,対象\n"
                   f"35075-00011M,{KEY},前払金保証,〇〇市,〇〇建設株式会社,〇〇工事,新規\n"
                   "35075-00012M,short,前払金保証,〇〇市,〇〇建設株式会社,〇〇工事,新規\n",
                   encoding="utf-8")
    browser.login("admin", PASSWORD)
    browser.open("/guarantees/import")
    browser.shot("import")
    browser.find('input[type=file][name=file]').send_keys(str(bad))
    browser.find('form[enctype="multipart/form-data"] button[type=submit]').click()
    browser.wait_for(lambda: "確認結果" in browser.text(), "the preview")
    assert "export.csv: line 3, column 認証キー" in browser.find("ul.problems").text
    assert not browser.all('input[name="token"]')
    assert KEY not in browser.text()
    assert web.store.versions("35075-00011M") == []
    browser.shot("import-preview")


def test_a_contractor_sees_its_submissions(web, browser):
    browser.login("contractor", PASSWORD)
    browser.open("/submissions")
    assert browser.find("h1").text
    browser.shot("submissions")

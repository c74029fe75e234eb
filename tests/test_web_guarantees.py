"""電子保証 in the console (issue 16): a guarantee's history with the mails that cited it,
never its key nor the key's hash; scope by the issuer's name; the CSV import's preview that
writes nothing and names line and column, then the import of exactly what was previewed;
against a real uvicorn on loopback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mailbot.daemon import Pipeline
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import guarantees, versions, web_audit
from parsers import Reader

from .test_submission_forms import mail
from .web_console import console

pytestmark = pytest.mark.clock

KEY = "Z28YUEAJ38ux"
HEADER = "保証契約番号,認証キー,商品名,発注者名,請負契約者,工事名,対象\n"


@pytest.fixture
def web(tmp_path):
    with console(tmp_path) as running:
        yield running


def register(web, number: str, issuer: str, key: str = KEY) -> None:
    web.store.apply([GuaranteeEvent(number, "new", key, kind="前払金保証", issuer=issuer,
                                    contractor="〇〇建設株式会社", project_name="〇〇浄水場修繕工事",
                                    source="t")])


def decide_mail(web, mailbox: str, raw: bytes) -> int:
    """`raw` received by `mailbox` and decided by the real pipeline; its ledger id."""
    row = web.ledger.receive(mailbox, raw, now=web.clock()).id
    pipeline = Pipeline(web.config, web.store, web.ledger, Reader(), clock=web.clock)
    while pipeline.process_one():
        pass
    return row


def counts(web) -> tuple[int, int]:
    with web.store.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(guarantees)).scalar_one(),
                conn.execute(select(func.count()).select_from(versions)).scalar_one())


def audit_actions(web) -> list[str]:
    with web.store.engine.connect() as conn:
        return [r.action for r in conn.execute(select(web_audit.c.action)
                                                 .order_by(web_audit.c.id))]


def test_history_shows_versions_and_citing_mails_but_never_the_key_or_its_hash(web):
    register(web, "35075-00001M", "〇〇市")
    web.store.apply([GuaranteeEvent("35075-00001M", "amendment", "Ab12Cd34Ef56", change_no=1,
                                    guaranteed_amount=1_200_000, source="t2")])
    cited = decide_mail(web, "maru", mail("35075-00001M", "〇〇浄水場修繕工事"))
    other = decide_mail(web, "batsu", mail("35075-00001M", "〇〇浄水場修繕工事"))
    clerk = web.login("maru-clerk")
    page = clerk.get("/guarantees/35075-00001M")
    assert page.status_code == 200, page.text[:500]
    html = page.text
    assert "第1版 新規" in html and "第2版 変更" in html and "変更番号 1" in html
    assert "1,200,000円" in html and "〇〇浄水場修繕工事" in html and "JST" in html
    assert f'href="/mails/{cited}"' in html
    assert f'href="/mails/{other}"' not in html  # △△町's mail: out of the clerk's scope
    with web.store.engine.connect() as conn:
        hashes = [h for row in conn.execute(select(versions.c.key_hash, versions.c.row_hash))
                  for h in row]
    for secret in (KEY, "Ab12Cd34Ef56", web.store.hash_key(KEY), *hashes):
        assert secret not in html
    # The search finds it, and an exact number goes straight to it.
    found = clerk.get("/guarantees", params={"q": "３５０７５－００００１Ｍ"})
    assert found.status_code == 303 and found.headers["location"] == "/guarantees/35075-00001M"
    assert "35075-00001M" in clerk.get("/guarantees", params={"q": "35075"}).text


def test_a_guarantee_of_another_issuer_is_404_as_if_missing(web):
    register(web, "35075-00002M", "△△町")
    clerk = web.login("maru-clerk")
    assert clerk.get("/guarantees/35075-00002M").status_code == 404
    assert clerk.get("/guarantees/35075-09999M").status_code == 404
    assert clerk.get("/guarantees/not-a-number").status_code == 404
    searched = clerk.get("/guarantees", params={"q": "35075-00002M"}).text
    assert 'href="/guarantees/35075-00002M"' not in searched and "見つかりません" in searched
    assert web.login("batsu-clerk").get("/guarantees/35075-00002M").status_code == 200


def upload(client, name: str, text: str, encoding: str = "utf-8"):
    return client.post("/guarantees/import", files={"file": (name, text.encode(encoding),
                                                             "text/csv")},
                       token_page="/guarantees/import")


def test_a_file_with_an_error_names_line_and_column_and_writes_nothing(web):
    admin = web.login("admin")
    before = counts(web)
    bad = (HEADER + f"35075-00011M,{KEY},前払金保証,〇〇市,〇〇建設株式会社,〇〇工事,新規\n"
           + "35075-00012M,short,前払金保証,〇〇市,〇〇建設株式会社,〇〇工事,新規\n"
           + f"35075-00013M,{KEY},前払金保証,〇〇市,〇〇建設株式会社,〇〇工事,削除\n")
    answer = upload(admin, "export.csv", bad)
    assert answer.status_code == 422
    html = answer.text
    assert "export.csv: line 3, column 認証キー: not a valid 認証キー" in html
    assert "export.csv: line 4, column 対象: not one of 新規, 変更, 訂正, 取消" in html
    assert "この内容で取り込む" not in html and 'name="token"' not in html
    assert KEY not in html
    assert counts(web) == before
    assert audit_actions(web)[-1] == "store_import_previewed"


def confirm(client, html: str):
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    return client.post("/guarantees/import", {"token": token}, token_page="/guarantees/import")


def test_a_clean_file_previews_then_imports_exactly_that(web):
    admin = web.login("admin")
    first = HEADER + f"35075-00021M,{KEY},前払金保証,〇〇市,〇〇建設株式会社,〇〇浄水場修繕工事,新規\n"
    assert confirm(admin, upload(admin, "first.csv", first).text).status_code == 303
    before = counts(web)
    assert before == (1, 1)
    good = (first + "35075-00021M,,,,,,取消\n"
            + f"35075-00022M,{KEY},契約保証,〇〇市,〇〇建設株式会社,〇〇工事,新規\n")
    shown = upload(admin, "export.csv", good, "cp932")
    assert shown.status_code == 200, shown.text[:3000]
    html = shown.text
    facts = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]+)</td></tr>", html))
    assert facts["データ行"] == "3" and facts["保証契約番号"] == "2 件"
    assert facts["新規に登録"] == "1 件" and facts["変更・訂正・取消"] == "1 件"
    # The first row was imported already (first.csv): skipped, as the CLI does.
    assert facts["取り込み済み（変更なし）"] == "1 件"
    assert counts(web) == before  # the preview wrote nothing
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    done = confirm(admin, html)
    assert done.status_code == 303
    flash = admin.get("/guarantees/import").text
    assert "export.csv: 2 件を取り込みました" in flash and "変更なし 1 件" in flash
    assert counts(web) == (before[0] + 1, before[1] + 2)
    with web.store.engine.connect() as conn:
        sources = [r.source for r in conn.execute(select(versions.c.source)
                                                  .order_by(versions.c.id))]
    assert sources[-2:] == ["web:admin:export.csv:3", "web:admin:export.csv:4"]
    assert audit_actions(web)[-2:] == ["store_import_previewed", "store_imported"]
    # The token was used: a second confirm writes nothing.
    again = admin.post("/guarantees/import", {"token": token}, token_page="/guarantees/import")
    assert again.status_code == 410
    assert counts(web) == (before[0] + 1, before[1] + 2)


def test_the_store_refusals_show_in_the_preview_and_block_the_confirm(web):
    register(web, "35075-00031M", "〇〇市")
    admin = web.login("admin")
    text = HEADER + "35075-00031M,Other1234Key,前払金保証,〇〇市,〇〇建設株式会社,〇〇工事,新規\n"
    answer = upload(admin, "again.csv", text)
    assert answer.status_code == 422
    assert "again.csv:2: guarantee 35075-00031M already exists (use 変更 or 訂正)" in answer.text
    assert 'name="token"' not in answer.text


def test_an_issuer_outside_a_scoped_admins_scope_is_refused_naming_the_line(tmp_path):
    with console(tmp_path) as web:
        web.login("admin")  # the fixture's admin sees every issuer; make one for 〇〇市 only
        from mailbot.web.accounts import Accounts

        from .web_console import PASSWORD
        Accounts(web.store.engine).add("maru-admin", PASSWORD, "admin", ("maru",), False,
                                       datetime.now(UTC))
        admin = web.login("maru-admin")
        before = counts(web)
        text = (HEADER + f"35075-00041M,{KEY},前払金保証,〇〇市,〇〇建設株式会社,〇〇工事,新規\n"
                + f"35075-00042M,{KEY},前払金保証,△△町,〇〇建設株式会社,△△工事,新規\n")
        answer = upload(admin, "mixed.csv", text)
        assert answer.status_code == 422
        assert "mixed.csv: line 3, column 発注者名" in answer.text
        assert "line 2," not in answer.text
        assert counts(web) == before


def test_import_is_for_admins_only_and_the_upload_expires(tmp_path):
    now = [datetime(2026, 11, 24, 1, 0, tzinfo=UTC)]
    with console(tmp_path, clock=lambda: now[0]) as web:
        clerk = web.login("maru-clerk")
        assert clerk.get("/guarantees/import").status_code == 403
        refused = clerk.post("/guarantees/import", files={"file": ("a.csv", b"x", "text/csv")},
                             token_page="/account")
        assert refused.status_code == 403
        admin = web.login("admin")
        text = HEADER + f"35075-00051M,{KEY},前払金保証,〇〇市,〇〇建設株式会社,〇〇工事,新規\n"
        shown = upload(admin, "late.csv", text)
        token = re.search(r'name="token" value="([^"]+)"', shown.text).group(1)
        # Another admin cannot confirm it, and after the expiry nobody can.
        from mailbot.web.accounts import Accounts

        from .web_console import PASSWORD
        Accounts(web.store.engine).add("admin2", PASSWORD, "admin", ("*",), False, now[0])
        other = web.login("admin2")
        assert other.post("/guarantees/import", {"token": token},
                          token_page="/guarantees/import").status_code == 410
        now[0] += timedelta(minutes=31)
        late = admin.post("/guarantees/import", {"token": token}, token_page="/guarantees/import")
        assert late.status_code == 410
        assert counts(web) == (0, 0)
        assert upload(admin, "notes.txt", "x").status_code == 400

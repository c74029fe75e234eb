"""Each issuer's form: address by kind, subject rule, body lines, attachments, charset.

Three differently configured issuers (〇〇市, △△町, □□水道局) and the three ways of
finding the issuer (the store, the mail's text, the 工事名 rules), on SQLite and
PostgreSQL, through `plan_notice` with notices the real reader took out of real mail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from mailbot.config import ConfigError, load_config
from mailbot.samples.notice_pdf import NoticeFields, render_notice_pdf
from mailbot.store import GuaranteeEvent
from mailbot.submit.files import attachments_by_origin
from mailbot.submit.plan import plan_notice
from parsers import Reader
from parsers.mime import BodyText, walk_message

from .configs import CONTRACTOR

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
CONFIG = CONTRACTOR + """
[issuers.city]
name = "〇〇市"
departments = { "前払金保証" = "会計課" }
[issuers.city.submission]
to = "keiyaku@city.example.jp"
to_by_kind = { "前払金保証" = "maebarai@city.example.jp" }
subject = "【電子保証】{{ project_no }} {{ project_name }}"
subject_by_kind = { "前払金保証" = "【前払金書類】{{ project_no }}" }

[issuers.town]
name = "△△町"
aliases = ["△△町役場"]
[issuers.town.submission]
to = "denshi@town.example.jp"
subject = "電子保証認証キー:{{ project_name }}"
fields = ["工事名", "受注者", "担当者氏名", "連絡先", "保証契約番号"]
charset = "iso-2022-jp"
attachments = ["extra/委任状.pdf"]

[issuers.water]
name = "□□水道局"
[issuers.water.submission]
to_by_kind = { "契約保証" = "keiyaku@water.example.jp" }
subject = "【電子保証】{{ project_no }}"
fields = ["工事番号", "工事名", "受注者", "保証名称"]

[issuers.nosub]
name = "××村"

[[projects]]
name = "水道局の工事"
project = "(?P<project_no>水R8-[0-9]+)"
issuer = "water"

[[projects]]
name = "市の浄水場"
project = "浄水場"
project_no = "R8-015"
"""


@pytest.fixture
def config(tmp_path):
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "委任状.pdf").write_bytes(b"%PDF-1.4 power of attorney")
    path = tmp_path / "mailbot.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path)


def mail(number: str, project: str, kind: str = "前払金保証", text: str = "",
         key: str = "Z28YUEAJ38ux") -> bytes:
    message = EmailMessage()
    message["From"] = "tanto@maru.example.jp"
    message["To"] = "denshi@maru.example.jp"
    message["Subject"] = "認証キーのお知らせ"
    message["Message-ID"] = make_msgid(domain="maru.example.jp")
    message.set_content(text or "お知らせを転送します。\n")
    pdf = render_notice_pdf(NoticeFields(number, key, kind, project, "〇〇建設株式会社",
                                         "東日本建設業保証株式会社"))
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="お知らせ.pdf")
    return message.as_bytes()


def plan(raw: bytes, config, store):  # noqa: ANN001
    reader = Reader()
    [notice] = reader.read_bytes(raw, "m.eml").notices
    contents = walk_message(raw, reader.limits)
    texts = [i.text for i in contents.items if isinstance(i, BodyText)]
    return plan_notice(notice, attachments_by_origin(contents, reader.limits),
                       ["認証キーのお知らせ", *texts], config, store, NOW)


def parsed(p) -> EmailMessage:  # noqa: ANN001
    assert p.state == "queued", p.reason
    return message_from_bytes(p.raw, policy=policy.default)


def register(store, number: str, issuer: str) -> None:  # noqa: ANN001
    store.apply([GuaranteeEvent(number, "new", "Z28YUEAJ38ux", issuer=issuer, source="t")])


def test_city_address_and_subject_follow_the_kind(config, store):
    register(store, "35075-00001M", "〇〇市")
    register(store, "35075-00002M", "〇〇市")
    advance = plan(mail("35075-00001M", "〇〇浄水場△△修繕工事"), config, store)
    contract = plan(mail("35075-00002M", "〇〇浄水場△△修繕工事", kind="契約保証"), config, store)
    assert (advance.issuer, advance.found_by) == ("city", "store")
    assert advance.to_addr == "maebarai@city.example.jp"
    assert advance.subject == "【前払金書類】R8-015"
    assert contract.to_addr == "keiyaku@city.example.jp"
    assert contract.subject == "【電子保証】R8-015 〇〇浄水場△△修繕工事"
    message = parsed(advance)
    assert message["To"] == "maebarai@city.example.jp"
    body = message.get_body(("plain",)).get_content()
    assert body.startswith("〇〇市 会計課 御中")  # the department for this kind
    lines = [line for line in body.splitlines() if "：" in line]
    assert lines[:4] == ["受注者：〇〇建設株式会社", "担当者氏名・連絡先：工務部 〇〇 03-0000-0000",
                         "工事名：〇〇浄水場△△修繕工事", "保証名称：前払金保証"]
    [pdf] = list(message.iter_attachments())
    assert pdf.get_filename() == "お知らせ.pdf"
    assert pdf.get_content().startswith(b"%PDF")
    assert "Z28YUEAJ38ux" not in body


def test_town_found_by_text_in_iso_2022_jp_with_its_extra_file(config, store):
    p = plan(mail("35075-00003M", "△△町道□□線舗装工事",
                  text="△△町役場へ提出してください。\n"), config, store)
    assert (p.issuer, p.found_by) == ("town", "text")
    assert p.subject == "電子保証認証キー:△△町道□□線舗装工事"
    assert p.files == ["お知らせ.pdf", "委任状.pdf"]
    assert b"charset=\"iso-2022-jp\"" in p.raw
    message = parsed(p)
    assert message["To"] == "denshi@town.example.jp"
    body = message.get_body(("plain",)).get_content()
    lines = [line for line in body.splitlines() if "：" in line]
    assert lines[:5] == ["工事名：△△町道□□線舗装工事", "受注者：〇〇建設株式会社", "担当者氏名：工務部 〇〇",
                         "連絡先：03-0000-0000", "保証契約番号：35075-00003M"]
    names = [a.get_filename() for a in message.iter_attachments()]
    assert names == ["お知らせ.pdf", "委任状.pdf"]


def test_water_found_by_project_rule_with_the_number_from_the_name(config, store):
    p = plan(mail("35075-00004M", "水R8-042 配水管布設工事", kind="契約保証"), config, store)
    assert (p.issuer, p.found_by) == ("water", "project")
    assert p.subject == "【電子保証】水R8-042"
    body = parsed(p).get_body(("plain",)).get_content()
    assert "工事番号：水R8-042" in body.splitlines()
    # 前払金 has no address at the water bureau: staff must hear why.
    advance = plan(mail("35075-00005M", "水R8-043 配水池改良工事"), config, store)
    assert advance.state == "unroutable"
    assert "前払金保証" in advance.reason and "提出先アドレス" in advance.reason


def test_store_wins_over_text_and_unknown_issuers_are_not_guessed(config, store):
    register(store, "35075-00006M", "〇〇市")
    p = plan(mail("35075-00006M", "〇〇浄水場", text="△△町役場の件です\n"), config, store)
    assert (p.issuer, p.found_by) == ("city", "store")
    # The store names a body mailbot has no address for: no guessing from the text.
    register(store, "35075-00007M", "◇◇県")
    q = plan(mail("35075-00007M", "〇〇浄水場", text="△△町役場\n"), config, store)
    assert q.state == "unroutable" and "◇◇県" in q.reason
    # Two issuers named in the text: ambiguous.
    r = plan(mail("35075-00008M", "道路工事", text="〇〇市 と △△町 の共同発注\n"), config, store)
    assert r.state == "unroutable" and any("複数" in line for line in r.trail)


def test_missing_values_and_forms_are_reasons_not_mails(config, store):
    register(store, "35075-00009M", "〇〇市")
    no_number = plan(mail("35075-00009M", "市道□□線工事", kind="契約保証"), config, store)
    assert no_number.state == "unroutable" and "工事番号" in no_number.reason
    register(store, "35075-00010M", "××村")
    no_form = plan(mail("35075-00010M", "村道工事"), config, store)
    assert no_form.state == "unroutable" and "[issuers.nosub.submission]" in no_form.reason


@pytest.mark.parametrize(("change", "where"), [
    ('subject = "【電子保証】{{ project_no }} {{ project_name }}"',
     "issuers.city.submission.subject"),
    ('fields = ["工事名", "受注者", "担当者氏名", "連絡先", "保証契約番号"]',
     "issuers.town.submission.fields"),
    ('attachments = ["extra/委任状.pdf"]', "issuers.town.submission.attachments"),
    ('to = "denshi@town.example.jp"', "issuers.town.submission"),
])
def test_config_errors_name_the_field(tmp_path, change, where):
    broken = {
        "issuers.city.submission.subject": 'subject = "【電子保証】{{ kouji_no }}"',
        "issuers.town.submission.fields": 'fields = ["工事名", "印鑑"]',
        "issuers.town.submission.attachments": 'attachments = ["extra/ない.pdf"]',
        "issuers.town.submission": 'to = "not an address"',
    }[where]
    path = tmp_path / "mailbot.toml"
    path.write_text(CONFIG.replace(change, broken, 1), encoding="utf-8")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "委任状.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and where in str(caught.value)


def test_a_contractor_mailbox_needs_the_contractor_table(tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text('[[mailboxes]]\nname = "queue"\nrole = "contractor"\nkind = "lmtp"\n'
                    'listen = "127.0.0.1:0"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"contractor.*must say who submits"):
        load_config(path)


@pytest.mark.parametrize("wrapping", ["forwarded", "zip"])
def test_the_pdf_is_taken_out_of_forwards_and_zips(config, store, wrapping):
    import io
    import zipfile

    register(store, "35075-00011M", "〇〇市")
    inner = mail("35075-00011M", "〇〇浄水場△△修繕工事")
    pdf = next(message_from_bytes(inner, policy=policy.default).iter_attachments()).get_content()
    outer = EmailMessage()
    outer["From"] = "tanto@maru.example.jp"
    outer["Subject"] = "Fw: 認証キーのお知らせ"
    outer.set_content("転送します。\n")
    if wrapping == "forwarded":
        outer.add_attachment(message_from_bytes(inner, policy=policy.default))
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("書類/お知らせ.pdf", pdf)
        outer.add_attachment(buffer.getvalue(), maintype="application", subtype="zip",
                             filename="書類.zip")
    p = plan(outer.as_bytes(), config, store)
    [attached] = list(parsed(p).iter_attachments())
    assert attached.get_filename() == "お知らせ.pdf"
    assert attached.get_content() == pdf


def test_a_notice_typed_in_the_body_is_not_submitted_without_its_pdf(config, store):
    register(store, "35075-00012M", "〇〇市")
    raw = EmailMessage()
    raw["From"] = "tanto@maru.example.jp"
    raw["Subject"] = "番号とキー"
    raw.set_content("保証契約番号：35075-00012M\n認証キー：Z28YUEAJ38ux\n")
    p = plan(raw.as_bytes(), config, store)
    assert p.state == "unroutable" and "PDF" in p.reason

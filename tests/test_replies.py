"""Reply and staff mail rendering (mailbot.replies): content, headers, charsets, template sets.

Fictional data only: 〇〇市, 〇〇建設 株式会社, example.jp.
"""

from __future__ import annotations

import email
import re
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage

import pytest

from mailbot.replies import (
    REPO_TEMPLATES,
    ReplySettings,
    new_message_id,
    render_reply,
    render_staff,
    strip_reply_prefixes,
)
from parsers.model import PROBLEM_CODES

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

JST = timezone(timedelta(hours=9))
NOW = datetime(2026, 7, 1, 10, 30, tzinfo=JST)
FULL_KEY = "Z28YUEAJ38ux"
MASKED = "Z28Y********"
SUBJECT = "【電子保証】工事番号 第12号 〇〇浄水場△△修繕工事"
SETTINGS = ReplySettings(
    from_addr="keiyaku@city.example.jp",
    from_name="〇〇市 契約検査課",
    signature="〇〇市 総務部 契約検査課\n電話 000-000-0000",
)

OUTCOME_CODES = (
    "unknown_number", "key_mismatch", "issuer_mismatch", "kind_mismatch", "project_mismatch",
    "contractor_mismatch", "cancelled", "superseded", "expired", "amount_rule", "not_eligible",
    "throttled",
)
# One line of each code's explanation (what the contractor should do).
EXPLANATIONS = {
    "unknown_number": "保証契約番号の電子保証を確認できませんでした。",
    "key_mismatch": "保証会社のネットデスクから「認証キーのお知らせ」を",
    "issuer_mismatch": "正しい提出先へお送りください。",
    "kind_mismatch": "該当するお知らせのPDFファイルをお送りください。",
    "project_mismatch": "契約書の工事名と「認証キーのお知らせ」の工事名をご確認いただき、",
    "contractor_mismatch": "契約書の商号と「認証キーのお知らせ」の記載をご確認いただき、",
    "cancelled": "この電子保証は取り消されているため、受け付けることができません。",
    "superseded": "変更後の最新の「認証キーのお知らせ」を",
    "expired": "保証期間の延長などについて保証会社へご相談のうえ、",
    "amount_rule": "契約の内容と保証金額について保証会社へご確認いただき、",
    "not_eligible": "書面の保証証書をご提出ください。",
    "throttled": "確認を一時的に停止しています。",
    "no_notice_found": "PDFファイルを添付して、改めてお送りください。",
    "incomplete_notice": "保証契約番号と認証キーの両方を読み取ることができませんでした。",
    "encrypted_pdf": "パスワードを設定せずに再送してください。",
    "encrypted_archive": "パスワードなしで（PDFファイルを直接添付して）再送してください。",
    "no_text_layer": "元のPDFファイルを、そのまま添付してお送りください。",
    "unreadable_attachment": "添付ファイルが破損しているか、対応していない形式のため",
    "attachment_too_large": "添付ファイルが大きすぎるため、内容を確認できませんでした。",
    "read_timeout": "添付ファイルの読み取りが時間内に終わらなかったため",
    "too_many_parts": "転送ではなく、「認証キーのお知らせ」のPDFファイルを直接添付して",
}
GENERIC = "確認の途中で問題が見つかりました。"


def notice(number: str = "35075-00001M", outcomes=("verified",), reasons=()) -> dict:
    return {"guarantee_number": number, "auth_key_masked": MASKED,
            "outcomes": list(outcomes), "reasons": list(reasons)}


def reply_context(notices=(), problems=(), subject: str | None = SUBJECT) -> dict:
    return {
        "in_reply_to": "<orig.1@maru.example.jp>",
        "references": "<root.0@maru.example.jp> <orig.1@maru.example.jp>",
        "subject": subject,
        "issuer": "〇〇市",
        "department": "契約検査課",
        "template_set": "default",
        "notices": list(notices),
        "problems": list(problems),
    }


def render(template: str, context: dict, settings: ReplySettings = SETTINGS) -> bytes:
    return render_reply(template, context, "tanto@maru-kensetsu.example.jp", settings,
                        new_message_id("city.example.jp"), NOW)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def body(raw: bytes) -> str:
    return parse(raw).get_content().replace("\r\n", "\n")


# --- discrepancy: one explanation per code ------------------------------------------------


@pytest.mark.parametrize("code", OUTCOME_CODES)
def test_discrepancy_explains_each_outcome(code):
    reason = f"理由の説明（{code}）。"
    context = reply_context([notice("35075-00002M", [code], [reason])])
    text = body(render("discrepancy", context))
    assert EXPLANATIONS[code] in text
    # Said once: the rule's reason only where it names the issuer's own condition (the
    # explanation then says what to do); elsewhere the explanation says it all.
    assert (reason in text) == (code in ("kind_mismatch", "project_mismatch",
                                         "contractor_mismatch", "amount_rule", "not_eligible"))
    assert "35075-00002M" in text and MASKED in text
    assert GENERIC not in text


@pytest.mark.parametrize("code", sorted(PROBLEM_CODES))
def test_discrepancy_explains_each_problem(code):
    context = reply_context(problems=[{"code": code, "origin": "attachment:書類.zip"}])
    text = body(render("discrepancy", context))
    assert EXPLANATIONS[code] in text
    assert "添付ファイル「書類.zip」" in text
    assert GENERIC not in text


def test_every_code_has_an_explanation_in_this_test():
    assert set(EXPLANATIONS) == set(OUTCOME_CODES) | set(PROBLEM_CODES)


def test_discrepancy_lists_confirmed_and_failed_notices_and_problems():
    context = reply_context(
        [notice("35075-00001M"),
         notice("35075-00002M", ["project_mismatch", "contractor_mismatch"],
                ["ご提出の工事名「〇〇浄水場」が登録されている電子保証の内容と一致しません。"])],
        [{"code": "no_text_layer", "origin": "attachment:スキャン.pdf#page=1"},
         {"code": "no_notice_found", "origin": "message"}],
    )
    text = body(render("discrepancy", context))
    confirmed, _, failed = text.partition("■ 確認できなかったもの")
    assert "35075-00001M" in confirmed and "35075-00001M" not in failed
    assert "【1】保証契約番号 35075-00002M" in failed
    assert EXPLANATIONS["project_mismatch"] in failed
    assert EXPLANATIONS["contractor_mismatch"] in failed
    assert "ご提出の工事名「〇〇浄水場」" in failed
    assert "【2】添付ファイル「スキャン.pdf」（1ページ目）" in failed
    assert "【3】「認証キーのお知らせ」が見つかりません" in failed
    assert "〇〇市 総務部 契約検査課" in text  # the signature closes the mail


def test_unknown_code_gets_the_generic_explanation():
    text = body(render("discrepancy", reply_context([notice(outcomes=["some_new_rule"])])))
    assert GENERIC in text


# --- confirmation ----------------------------------------------------------------------------


def test_confirmation_content():
    context = reply_context([notice("35075-00001M"), notice("35075-00003A")])
    text = body(render("confirmation", context))
    assert "受領および確認が完了しました" in text
    assert f"保証契約番号 35075-00001M（認証キー {MASKED}）" in text
    assert f"保証契約番号 35075-00003A（認証キー {MASKED}）" in text
    assert "これ以上のご対応は必要ありません" in text
    assert text.rstrip().endswith("電話 000-000-0000")


def test_default_signature_from_issuer_and_department():
    """Without a configured signature the closing names the desk and a contact: the
    address the reply comes from (「下記の担当までお問い合わせください」 points at it)."""
    settings = ReplySettings(from_addr="keiyaku@city.example.jp")
    text = body(render("confirmation", reply_context([notice()]), settings))
    assert text.rstrip().endswith("〇〇市 契約検査課\nお問い合わせ先：keiyaku@city.example.jp")
    assert text.index("下記の担当までお問い合わせください") < text.index("お問い合わせ先：")


@pytest.mark.parametrize("template", ["confirmation", "discrepancy"])
def test_replies_are_addressed_to_the_company_the_notice_names(template):
    outcomes = ["verified"] if template == "confirmation" else ["key_mismatch"]
    named = reply_context([notice(outcomes=outcomes)]) | {"addressee": "〇〇建設株式会社"}
    assert body(render(template, named)).startswith("〇〇建設株式会社 ご担当者様\n")
    unnamed = reply_context([notice(outcomes=outcomes)]) | {"addressee": None}
    assert body(render(template, unnamed)).startswith("ご担当者様\n")


def test_the_addressee_is_the_one_contractor_all_notices_name():
    from mailbot.pipeline.decide import addressee
    from parsers.model import Notice, ParseResult

    def parsed(*contractors):
        return ParseResult(source="m.eml", notices=[
            Notice(f"35075-0000{i}M", "Z28YUEAJ38ux", contractor=c)
            for i, c in enumerate(contractors, 1)])

    assert addressee(parsed("〇〇建設　株式会社")) == "〇〇建設 株式会社"
    assert addressee(parsed("〇〇建設株式会社", "〇〇建設株式会社", None)) == "〇〇建設株式会社"
    assert addressee(parsed("〇〇建設株式会社", "△△工業株式会社")) is None  # two companies
    assert addressee(parsed(None)) is None
    assert addressee(parsed("〇〇建設\u0007株式会社")) is None
    assert addressee(parsed("〇" * 61)) is None


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("original", [SUBJECT, f"Re: {SUBJECT}", f"RE:Re: {SUBJECT}",
                                      f"Ｒｅ：{SUBJECT}", f"Re[2]: 返信: {SUBJECT}"])
def test_reply_subject_is_re_once(original):
    msg = parse(render("confirmation", reply_context([notice()], subject=original)))
    assert msg["Subject"] == f"Re: {SUBJECT}"


def test_subject_fallback_when_the_original_has_none():
    assert parse(render("confirmation", reply_context([notice()], subject=None)))["Subject"] \
        == "【受領確認】電子保証の認証キーを確認しました"
    assert parse(render("discrepancy", reply_context([notice()], subject="")))["Subject"] \
        .startswith("【要対応】")


def test_reply_headers():
    message_id = new_message_id("city.example.jp")
    raw = render_reply("confirmation", reply_context([notice()]), "tanto@maru.example.jp",
                       SETTINGS, message_id, NOW)
    msg = parse(raw)
    assert msg["Message-ID"] == message_id
    assert msg["In-Reply-To"] == "<orig.1@maru.example.jp>"
    assert msg["References"].split() == ["<root.0@maru.example.jp>", "<orig.1@maru.example.jp>"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["To"] == "tanto@maru.example.jp"
    assert msg["From"].addresses[0].display_name == "〇〇市 契約検査課"
    assert msg["From"].addresses[0].addr_spec == "keiyaku@city.example.jp"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0]  # RFC 2047, not raw UTF-8 headers
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "base64"
    assert msg["Date"].datetime == NOW
    assert max(raw) < 128  # survives any relay


def test_long_message_ids_are_not_encoded():
    long_id = "<" + "a" * 90 + "@maru.example.jp>"
    context = {**reply_context([notice()]), "in_reply_to": long_id, "references": long_id}
    raw = render("confirmation", context)
    assert long_id.encode() in raw
    assert parse(raw)["In-Reply-To"] == long_id


def test_no_threading_headers_without_an_original_message_id():
    context = {**reply_context([notice()]), "in_reply_to": None, "references": None}
    msg = parse(render("confirmation", context))
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_new_message_id_is_unique_and_well_formed():
    ids = {new_message_id("city.example.jp") for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"<[^<>@\s]+@city\.example\.jp>", i) for i in ids)
    with pytest.raises(ValueError):
        new_message_id("bad domain")


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        render_reply("confirmation", reply_context([notice()]), "x@maru.example.jp", SETTINGS,
                     "no-brackets", NOW)
    with pytest.raises(ValueError):
        render_reply("confirmation", reply_context([notice()]), "x@maru.example.jp", SETTINGS,
                     new_message_id("city.example.jp"), NOW.replace(tzinfo=None))
    with pytest.raises(ValueError):
        render("digest", reply_context([notice()]))
    with pytest.raises(ValueError):
        render("confirmation", {**reply_context([notice()]), "template_set": "../etc"})


# --- keys (docs/security.md) -----------------------------------------------------------------


@pytest.mark.parametrize("charset", ["utf-8", "iso-2022-jp"])
@pytest.mark.parametrize("template", ["confirmation", "discrepancy"])
def test_no_full_key_anywhere(template, charset):
    outcomes = ["verified"] if template == "confirmation" else ["key_mismatch"]
    context = reply_context([notice(outcomes=outcomes)],
                            [{"code": "encrypted_pdf", "origin": "attachment:a.pdf"}])
    raw = render(template, context, ReplySettings(from_addr="k@city.example.jp", charset=charset))
    assert FULL_KEY.encode() not in raw
    text = body(raw)
    assert FULL_KEY not in text and MASKED in text


def test_a_context_with_a_clear_key_is_refused():
    leaky = reply_context([{**notice(), "auth_key": FULL_KEY}])
    with pytest.raises(ValueError, match="auth_key"):
        render("confirmation", leaky)


def test_templates_never_use_a_clear_key_field():
    files = [p for p in REPO_TEMPLATES.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert not re.search(r"auth_key(?!_masked)", path.read_text(encoding="utf-8")), path


# --- ISO-2022-JP -------------------------------------------------------------------------


def test_iso2022jp_is_7bit_and_decodes():
    settings = ReplySettings(
        from_addr="keiyaku@city.example.jp", from_name="〇〇市 契約検査課",
        charset="iso-2022-jp", signature="〇〇市 契約検査課 ①係\n㈱〇〇 受付 9:00～17:00",
    )
    context = reply_context([notice()], [{"code": "encrypted_archive", "origin": "attachment:書類.zip"}])
    raw = render("discrepancy", context, settings)
    assert max(raw) < 128
    msg = parse(raw)
    assert msg.get_content_charset() == "iso-2022-jp"
    assert msg["Content-Transfer-Encoding"] == "7bit"
    payload = msg.get_payload(decode=True)
    strict = payload.decode("iso-2022-jp")  # a plain decoder reads all of it, no errors
    for line in payload.split(b"\n"):  # every line ends in ASCII mode (RFC 1468)
        assert line.rfind(b"\x1b$B") < line.rfind(b"\x1b(B") or b"\x1b$B" not in line
    text = msg.get_content()
    assert text.replace("\r\n", "\n") == strict.replace("\r\n", "\n")
    assert "\ufffd" not in text and "〓" not in text
    assert "(1)係" in text and "(株)〇〇" in text and "9:00〜17:00" in text
    assert EXPLANATIONS["encrypted_archive"] in text
    assert "添付ファイル「書類.zip」" in text
    assert msg["Subject"] == f"Re: {SUBJECT}"


# --- template sets -----------------------------------------------------------------------


def test_issuer_template_set_overrides_one_file_and_falls_back(tmp_path):
    kwsa = tmp_path / "templates" / "kwsa"
    kwsa.mkdir(parents=True)
    (kwsa / "confirmation.txt.j2").write_text(
        "企業団の確認完了です。\n{% for n in notices %}{{ n.guarantee_number }}\n{% endfor %}",
        encoding="utf-8")
    (kwsa / "subjects.toml").write_text('[confirmation]\nsubject = "【企業団】{subject}"\n',
                                        encoding="utf-8")
    settings = ReplySettings(from_addr="keiyaku@kwsa.example.jp", template_set="kwsa",
                             template_dirs=(tmp_path / "templates", REPO_TEMPLATES))
    confirmation = render("confirmation", {**reply_context([notice()]), "template_set": None},
                          settings)
    assert body(confirmation).startswith("企業団の確認完了です。\n35075-00001M\n")
    assert parse(confirmation)["Subject"] == f"【企業団】{SUBJECT}"
    discrepancy = render("discrepancy", reply_context([notice(outcomes=["expired"])],
                                                      subject=None) | {"template_set": "kwsa"},
                         settings)
    assert EXPLANATIONS["expired"] in body(discrepancy)  # default's template and explanations
    assert parse(discrepancy)["Subject"].startswith("【要対応】")  # default's subjects.toml


def test_issuer_set_can_replace_the_explanations(tmp_path):
    kwsa = tmp_path / "kwsa"
    kwsa.mkdir()
    default_explanations = (REPO_TEMPLATES / "default" / "_explanations.j2").read_text("utf-8")
    (kwsa / "_explanations.j2").write_text(
        default_explanations.replace("書面の保証証書をご提出ください。",
                                     "書面の保証証書を契約課窓口へお持ちください。"),
        encoding="utf-8")
    settings = ReplySettings(from_addr="k@kwsa.example.jp", template_set="kwsa",
                             template_dirs=(tmp_path, REPO_TEMPLATES))
    context = reply_context([notice(outcomes=["not_eligible"])]) | {"template_set": None}
    text = body(render("discrepancy", context, settings))
    assert "書面の保証証書を契約課窓口へお持ちください。" in text


def test_unknown_template_set_falls_back_to_default(tmp_path):
    settings = ReplySettings(from_addr="k@city.example.jp", template_set="nosuch",
                             template_dirs=(tmp_path, REPO_TEMPLATES))
    context = reply_context([notice()]) | {"template_set": None}
    assert "受領および確認が完了しました" in body(render("confirmation", context, settings))


# --- staff mail --------------------------------------------------------------------------

DIGEST = {
    "issuer": "〇〇市",
    "period_start": "2026-06-30T08:30:00+09:00",
    "period_end": "2026-07-01T08:30:00+09:00",
    "counts": {"verified": 12, "discrepancy": 3, "quarantined": 1, "odd_status": 2},
    "needs_review": [
        {"received_at": "2026-06-30T01:05:00+00:00", "sender": "tanto@maru-kensetsu.example.jp",
         "subject": SUBJECT, "outcomes": ["key_mismatch"], "problems": ["encrypted_archive"]},
        {"received_at": "2026-06-30T11:00:00+09:00", "sender": "b@maru.example.jp",
         "subject": None, "outcomes": [], "problems": [{"code": "no_notice_found"}]},
    ],
    "quarantined": [{"id": 42, "received_at": "2026-06-30T12:00:00+09:00",
                     "sender": "c@maru.example.jp", "subject": "書類送付"}],
    "failed_replies": [{"to": "d@maru.example.jp", "subject": f"Re: {SUBJECT}",
                        "error": "550 5.1.1 user unknown",
                        "failed_at": "2026-06-30T15:00:00+09:00"}],
}


def test_digest_renders():
    raw = render_staff("digest", DIGEST, ["staff1@city.example.jp", "staff2@city.example.jp"],
                       SETTINGS, new_message_id("city.example.jp"), NOW)
    msg = parse(raw)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["In-Reply-To"] is None
    assert [a.addr_spec for a in msg["To"].addresses] == ["staff1@city.example.jp",
                                                          "staff2@city.example.jp"]
    assert msg["Subject"] == "【電子保証受付】日次報告 2026-07-01 〇〇市"
    text = msg.get_content()
    assert "2026年6月30日 08:30 〜 2026年7月1日 08:30" in text
    assert "確認完了（確認完了の返信）：12件" in text
    assert "要確認（不一致・不備の返信）：3件" in text
    assert "odd_status：2件" in text and "合計：18件" in text
    assert "■ 確認が必要なメール（2件）" in text
    assert "2026年6月30日 10:05　tanto@maru-kensetsu.example.jp" in text  # UTC → JST
    assert "認証キーが一致しません" in text and "パスワード付きのZIPファイルです" in text
    assert "（件名なし）" in text and "「認証キーのお知らせ」が見つかりません" in text
    assert "c@maru.example.jp（ID 42）" in text
    assert "550 5.1.1 user unknown" in text and "宛先：d@maru.example.jp" in text


def test_empty_digest_renders():
    context = {**DIGEST, "counts": {}, "needs_review": [], "quarantined": [],
               "failed_replies": []}
    text = body(render_staff("digest", context, ["staff@city.example.jp"], SETTINGS,
                             new_message_id("city.example.jp"), NOW))
    assert "対象期間に処理したメールはありません。" in text
    assert text.count("ありません。") == 4


def test_alert_renders():
    context = {"issuer": "〇〇市", "what": "返信を期限内に送信できませんでした",
               "details": ["宛先：tanto@maru.example.jp", "理由：421 4.4.2 timeout"]}
    raw = render_staff("alert", context, ["staff@city.example.jp"], SETTINGS,
                       new_message_id("city.example.jp"), NOW)
    msg = parse(raw)
    assert msg["Subject"] == "【電子保証受付・要対応】返信を期限内に送信できませんでした"
    assert msg["Auto-Submitted"] == "auto-generated"
    text = body(raw)
    assert "■ 返信を期限内に送信できませんでした" in text
    assert "  宛先：tanto@maru.example.jp\n  理由：421 4.4.2 timeout\n" in text
    assert "発注者：〇〇市" in text and "2026年7月1日 10:30" in text


def test_staff_mail_in_iso2022jp():
    settings = ReplySettings(from_addr="keiyaku@city.example.jp", charset="iso-2022-jp")
    raw = render_staff("alert", {"issuer": None, "what": "メールを隔離しました",
                                 "details": ["ID 42 ㈱〇〇建設"]},
                       ["staff@city.example.jp"], settings, new_message_id("city.example.jp"), NOW)
    assert max(raw) < 128
    assert "ID 42 (株)〇〇建設" in body(raw)


def test_strip_reply_prefixes():
    assert strip_reply_prefixes("  RE: re:\tＲＥ： 件名 ") == "件名"
    assert strip_reply_prefixes("Report: 件名") == "Report: 件名"


def test_the_default_sender_address_renders():
    """`[smtp] from` defaults to mailbot@localhost: a host without a dot is a sender we may
    use (the kill -9 test's daemon had every reply failed on it)."""
    raw = render_reply("confirmation", reply_context([notice()]), "tanto@maru.example.jp",
                       ReplySettings(from_addr="mailbot@localhost"), "<a.1@localhost>", NOW)
    assert parse(raw)["From"].addresses[0].addr_spec == "mailbot@localhost"

"""Sample builders whose notice (or lack of one) is typed in the mail body.

Covers the body charsets Japanese mailers use (ISO-2022-JP with cp932 characters, Shift_JIS,
EUC-JP, a wrong label), HTML-only mail, incomplete and prose-only bodies, and a body that
repeats a notice also attached as a PDF.
"""

from __future__ import annotations

from mailbot.samples.base import (
    Case,
    Sample,
    envelope,
    expected,
    norm_text,
    notice,
    problem,
    sender_of,
)
from mailbot.samples.mails import (
    Part,
    attachment_part,
    build_message,
    mail_with_attachments,
    text_part,
)
from mailbot.samples.variants_attach import SHORT_NAME, notice_pdf_bytes, other_pdf


def _eml(case: Case, data: bytes, exp: dict) -> Sample:
    return Sample(case.name, f"{case.name}.eml", data, exp)


def _person(case: Case) -> str:
    return sender_of(case.a.contractor)[1].split("　")[-1]


def _typed(case: Case, lines: str, *, company: str | None = None) -> str:
    """A short body in which the contractor typed the notice values."""
    company = company or norm_text(case.a.contractor)
    return (
        "ご担当者様\n\nお世話になっております。\n"
        f"{company}の{_person(case)}です。\n\n"
        f"「{case.a.project_name}」の電子保証について、下記のとおりお知らせします。\n\n"
        f"{lines}\n\n以上、よろしくお願いいたします。\n"
    )


def _body_only(case: Case, exp_notices: list[dict], part: Part) -> Sample:
    """A mail whose only part is the typed body ``part``."""
    env = envelope(case, f"【電子保証】{case.a.project_name}")
    data = build_message(env, part, tag=case.name)
    return _eml(case, data, expected(exp_notices))


def html_only(case: Case) -> Sample:
    a = case.a
    html = (
        '<html><head><meta charset="utf-8"><title>電子保証</title></head><body>\n'
        "<div style=\"font-family:'MS Gothic'\">\n<p>ご担当者様</p>\n"
        f"<p>お世話になっております。<br>{norm_text(a.contractor)}&nbsp;{_person(case)}です。</p>\n"
        "<p>電子保証の内容を下記のとおりお知らせします。</p>\n"
        f"<p>保証契約番号&#65306;{a.guarantee_number}<br>\n"
        f'認証キー&#65306;<span style="color:#000"><b>{a.auth_key}</b></span></p>\n'
        "<p>以上、よろしくお願いいたします。</p>\n</div></body></html>\n"
    )
    part = text_part(html, subtype="html", cte="quoted-printable")
    return _body_only(case, [notice(a, "body", details=False)], part)


def body_iso2022jp_cp932(case: Case) -> Sample:
    a = case.a
    company = norm_text(a.contractor).replace("株式会社", "").strip()
    body = (
        "ご担当者様\n\nお世話になっております。\n"
        f"㈱{company}の{_person(case)}です。\n\n"
        "提出書類は①前払金請求書、②電子保証の認証キーの2点です。\n"
        "電子保証は下記のとおりです。\n\n"
        f"保証契約番号：{a.guarantee_number}\n認証キー：{a.auth_key}\n\n"
        "よろしくお願いいたします。\n"
    )
    subject = f"【電子保証】{a.project_name}（㈱{company}）"
    env = envelope(case, subject, subject_charset="ISO-2022-JP")
    part = text_part(body, charset="iso-2022-jp", cte="7bit", label="ISO-2022-JP")
    data = build_message(env, part, tag=case.name)
    return _eml(case, data, expected([notice(a, "body", details=False)]))


def body_shift_jis(case: Case) -> Sample:
    a = case.a
    body = _typed(case, f"①電子保証\n保証契約番号：{a.guarantee_number}　認証キー：{a.auth_key}")
    part = text_part(body, charset="cp932", label="Shift_JIS", cte="8bit")
    return _body_only(case, [notice(a, "body", details=False)], part)


def body_euc_jp(case: Case) -> Sample:
    """EUC-JP, with labelled 工事名/保証区分 lines: those fields are expected, others null."""
    a = case.a
    body = _typed(
        case,
        f"工事名：{a.project_name}\n保証区分：{a.kind}\n"
        f"保証契約番号：{a.guarantee_number}\n認証キー：{a.auth_key}",
    )
    exp = notice(a, "body", details=False)
    exp["kind"] = a.kind
    exp["project_name"] = norm_text(a.project_name)
    part = text_part(body, charset="euc-jp", label="EUC-JP", cte="8bit")
    return _body_only(case, [exp], part)


def body_wrong_label(case: Case) -> Sample:
    a = case.a
    body = _typed(case, f"保証契約番号：{a.guarantee_number}\n認証キー：{a.auth_key}")
    part = text_part(body, charset="utf-8", label="iso-8859-1", cte="8bit")
    return _body_only(case, [notice(a, "body", details=False)], part)


def incomplete_body(case: Case) -> Sample:
    a = case.a
    body = _typed(
        case,
        f"保証契約番号：{a.guarantee_number}\n（認証キーは発行され次第、追ってお送りします。）",
    )
    env = envelope(case, f"【電子保証】{a.project_name}")
    data = build_message(env, text_part(body, cte="8bit"), tag=case.name)
    return _eml(case, data, expected(problems=[problem("incomplete_notice", "body")]))


def body_and_pdf_same(case: Case) -> Sample:
    """Body and PDF carry the same pair: reported once, from the PDF, which says more."""
    a = case.a
    body = _typed(
        case,
        f"保証契約番号：{a.guarantee_number}\n認証キー：{a.auth_key}\n"
        "（お知らせのPDFも添付いたします。）",
    )
    env = envelope(case, f"【電子保証】{a.project_name}")
    data = mail_with_attachments(
        env,
        body,
        [attachment_part(notice_pdf_bytes(a), SHORT_NAME)],
        cte="quoted-printable",
        tag=case.name,
    )
    return _eml(case, data, expected([notice(a, f"attachment:{SHORT_NAME}#page=1")]))


def body_two_notices(case: Case) -> Sample:
    a, b = case.a, case.b
    lines = (
        f"【1】\n保証区分：{a.kind}\n保証契約番号：{a.guarantee_number}\n認証キー：{a.auth_key}\n\n"
        f"【2】\n保証区分：{b.kind}\n保証契約番号：{b.guarantee_number}\n認証キー：{b.auth_key}"
    )
    exps = []
    for f in (a, b):
        exp = notice(f, "body", details=False)
        exp["kind"] = f.kind
        exps.append(exp)
    return _body_only(case, exps, text_part(_typed(case, lines), cte="base64"))


def prose_only(case: Case) -> Sample:
    body = (
        "ご担当者様\n\nお世話になっております。\n"
        f"{norm_text(case.a.contractor)}の{_person(case)}です。\n\n"
        "保証契約番号と認証キーは添付のとおりです。\n"
        "よろしくお願いいたします。\n"
    )
    env = envelope(case, f"【電子保証】{case.a.project_name}")
    data = mail_with_attachments(
        env, body, [attachment_part(other_pdf(), "提出書類.pdf")], tag=case.name
    )
    return _eml(case, data, expected(problems=[problem("no_notice_found", "message")]))

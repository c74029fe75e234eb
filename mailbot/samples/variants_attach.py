"""Sample builders whose notice travels as a PDF: layouts, odd PDFs, zips, forwards, names.

Each builder takes a :class:`~mailbot.samples.base.Case` and returns a
:class:`~mailbot.samples.base.Sample` whose ``expected`` is derived from the case's values.
"""

from __future__ import annotations

import functools
from typing import Any

from mailbot.samples.base import (
    Case,
    Sample,
    envelope,
    expected,
    greeting,
    notice,
    page,
    problem,
)
from mailbot.samples.mails import (
    Envelope,
    FilenameStyle,
    Part,
    attachment_part,
    build_message,
    mail_with_attachments,
    message_part,
    multipart,
    text_part,
)
from mailbot.samples.notice_pdf import NoticeFields, render_notice_pdf
from mailbot.samples.office import docx, odf, truncated, xlsx
from mailbot.samples.special_pdfs import (
    render_decompression_bomb_pdf,
    render_image_only_pdf,
    render_other_document_pdf,
    render_slow_pdf,
    render_unmapped_glyph_pdf,
    truncate_pdf,
)
from mailbot.samples.zips import bomb_zip, encrypted_zip, windows_zip

EJCS_NAME = "電子保証にかかる「認証キー」のお知らせ.pdf"
SHORT_NAME = "認証キーのお知らせ.pdf"
OTHER_NAME = "請負代金内訳書.pdf"
ZIP_TYPE = "application/x-zip-compressed"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT_TYPE = "application/vnd.oasis.opendocument.text"


@functools.lru_cache(maxsize=1024)
def notice_pdf_bytes(*fields: NoticeFields, **options: Any) -> bytes:
    """``render_notice_pdf`` cached per (values, options): the corpus repeats renders."""
    return render_notice_pdf(list(fields), **options)


@functools.lru_cache(maxsize=1)
def other_pdf() -> bytes:
    return render_other_document_pdf()


def _eml(case: Case, data: bytes, exp: dict[str, Any]) -> Sample:
    return Sample(case.name, f"{case.name}.eml", data, exp)


def _single(
    case: Case,
    pdf: bytes,
    filename: str = SHORT_NAME,
    *,
    exp: dict[str, Any] | None = None,
    subject: str | None = None,
    style: FilenameStyle = "rfc2231",
    ctype: str = "application/pdf",
) -> Sample:
    """A submission mail with one PDF; by default the notice of ``case.a`` on page 1."""
    env = envelope(case, subject or f"【電子保証】{case.a.project_name}")
    part = attachment_part(pdf, filename, ctype=ctype, style=style)
    data = mail_with_attachments(env, greeting(case), [part], tag=case.name)
    if exp is None:
        exp = expected([notice(case.a, page(f"attachment:{filename}"))])
    return _eml(case, data, exp)


def ejcs_cid(case: Case) -> Sample:
    env = envelope(case, f"【電子保証】工事番号R8-{case.index + 1:03d} {case.a.project_name}")
    parts = [
        attachment_part(notice_pdf_bytes(case.a, layout="ejcs", font="cid"), EJCS_NAME),
        attachment_part(other_pdf(), OTHER_NAME),
    ]
    data = mail_with_attachments(env, greeting(case), parts, tag=case.name)
    return _eml(case, data, expected([notice(case.a, page(f"attachment:{EJCS_NAME}"))]))


def ejcs_ttf_letterspaced(case: Case) -> Sample:
    return _single(case, notice_pdf_bytes(case.a, font="ttf", letter_spaced=True))


def wjcs_table(case: Case) -> Sample:
    name = "電子証書閲覧用「認証キー」等のお知らせ.pdf"
    return _single(case, notice_pdf_bytes(case.a, layout="wjcs", font="ttf"), name)


def generic_header_table(case: Case) -> Sample:
    pdf = notice_pdf_bytes(case.a, layout="generic", font="cid")
    return _single(case, pdf, "認証キー等のお知らせ.pdf")


def fake_bold(case: Case) -> Sample:
    return _single(case, notice_pdf_bytes(case.a, fake_bold=True))


def kangxi_radicals(case: Case) -> Sample:
    return _single(case, notice_pdf_bytes(case.a, font="ttf", kangxi=True))


def fullwidth_values(case: Case) -> Sample:
    return _single(case, notice_pdf_bytes(case.a, font="cid", fullwidth_values=True))


def two_pages(case: Case) -> Sample:
    name = "認証キーのお知らせ（前払金・契約保証）.pdf"
    exp = expected(
        [
            notice(case.a, page(f"attachment:{name}", 1)),
            notice(case.b, page(f"attachment:{name}", 2)),
        ]
    )
    return _single(case, notice_pdf_bytes(case.a, case.b), name, exp=exp)


def two_pdfs(case: Case) -> Sample:
    names = [f"{f.kind}_認証キーのお知らせ.pdf" for f in (case.a, case.b)]
    if names[0] == names[1]:
        names[1] = names[1].replace(".pdf", "(2).pdf")
    pairs = list(zip((case.a, case.b), names, strict=True))
    env = envelope(case, f"【電子保証】{case.a.project_name}（2件）")
    parts = [attachment_part(notice_pdf_bytes(f), n) for f, n in pairs]
    data = mail_with_attachments(env, greeting(case), parts, tag=case.name)
    exp = expected([notice(f, page(f"attachment:{n}")) for f, n in pairs])
    return _eml(case, data, exp)


def encrypted_pdf(case: Case) -> Sample:
    pdf = notice_pdf_bytes(case.a, encrypt_user_password="Kensetsu2026")
    exp = expected(problems=[problem("encrypted_pdf", f"attachment:{SHORT_NAME}")])
    return _single(case, pdf, exp=exp)


def owner_password_pdf(case: Case) -> Sample:
    return _single(case, notice_pdf_bytes(case.a, font="ttf", encrypt_owner_password="Owner-2026"))


def owner_password_cid(case: Case) -> Sample:
    """Owner-password PDF with the CID font: pdfminer reads (cid:N), pypdfium2 reads text."""
    return _single(case, notice_pdf_bytes(case.a, font="cid", encrypt_owner_password="Owner-2026"))


def image_only(case: Case) -> Sample:
    name = "認証キーのお知らせ_スキャン.pdf"
    exp = expected(problems=[problem("no_text_layer", f"attachment:{name}")])
    return _single(case, render_image_only_pdf(case.a), name, exp=exp)


def unmapped_glyphs(case: Case) -> Sample:
    """pdfminer yields (cid:N) only; pypdfium2 reads every field, so the notice is expected."""
    return _single(case, render_unmapped_glyph_pdf(case.a))


def zip_cp932(case: Case) -> Sample:
    archive = windows_zip([(SHORT_NAME, notice_pdf_bytes(case.a)), (OTHER_NAME, other_pdf())])
    exp = expected([notice(case.a, page(f"attachment:書類.zip/{SHORT_NAME}"))])
    return _single(case, archive, "書類.zip", exp=exp, ctype=ZIP_TYPE)


def zip_encrypted(case: Case) -> Sample:
    archive = encrypted_zip(
        [(SHORT_NAME, notice_pdf_bytes(case.a)), (OTHER_NAME, other_pdf())],
        "x7Gq2LpR",
        seed=case.index,
    )
    env = envelope(case, f"【電子保証】{case.a.project_name}")
    body = greeting(
        case,
        "認証キーのお知らせ等を添付（パスワード付きzip）にてお送りします。\n"
        "解凍パスワードは別メールにてお送りします。",
    )
    data = mail_with_attachments(
        env, body, [attachment_part(archive, "書類.zip", ctype=ZIP_TYPE)], tag=case.name
    )
    exp = expected(problems=[problem("encrypted_archive", "attachment:書類.zip")])
    return _eml(case, data, exp)


def zip_bomb(case: Case) -> Sample:
    """One member inflating to 1 GiB; the problem names the whole archive."""
    name = "書類一式.zip"
    exp = expected(problems=[problem("attachment_too_large", f"attachment:{name}")])
    return _single(case, bomb_zip(SHORT_NAME), name, exp=exp, ctype=ZIP_TYPE)


def forwarded(case: Case) -> Sample:
    inner_env = envelope(case, f"【電子保証】{case.a.project_name}")
    inner = mail_with_attachments(
        inner_env,
        greeting(case),
        [attachment_part(notice_pdf_bytes(case.a), SHORT_NAME)],
        tag=f"{case.name}_inner",
    )
    outer_env = Envelope(
        sender='"Soumu" <soumu@maru-kensetsu.example.jp>',
        to=inner_env.to,
        subject=f"Fw: 【電子保証】{case.a.project_name}",
        date=inner_env.date.replace("09:", "10:"),
        message_id=f"<{case.name}.{case.index}.fw@maru-kensetsu.example.jp>",
    )
    body = text_part(
        "お世話になっております。\n担当者より受領したメールを転送いたします。\n", cte="8bit"
    )
    data = build_message(
        outer_env, multipart([body, message_part(inner, "転送メール.eml")]), tag=case.name
    )
    origin = page(f"attachment:転送メール.eml/{SHORT_NAME}")
    return _eml(case, data, expected([notice(case.a, origin)]))


def octet_stream(case: Case) -> Sample:
    return _single(case, notice_pdf_bytes(case.a), "download", ctype="application/octet-stream")


def outlook_rfc2047_filename(case: Case) -> Sample:
    name = f"【電子保証】認証キーのお知らせ（R8-{case.index + 1:03d}）.pdf"
    return _single(case, notice_pdf_bytes(case.a), name, style="outlook")


def mac_name_filename_star(case: Case) -> Sample:
    return _single(case, notice_pdf_bytes(case.a), EJCS_NAME, style="mac")


def no_notice(case: Case) -> Sample:
    exp = expected(problems=[problem("no_notice_found", "message")])
    body = greeting(case, "請負代金内訳書を添付にてお送りします。")
    env = envelope(case, f"【契約書類】{case.a.project_name}")
    data = mail_with_attachments(
        env, body, [attachment_part(other_pdf(), OTHER_NAME)], tag=case.name
    )
    return _eml(case, data, exp)


def corrupt_pdf(case: Case) -> Sample:
    exp = expected(problems=[problem("unreadable_attachment", f"attachment:{SHORT_NAME}")])
    return _single(case, truncate_pdf(notice_pdf_bytes(case.a)), exp=exp)


def too_many_parts(case: Case, extra_parts: int = 300) -> Sample:
    env = envelope(case, f"【電子保証】{case.a.project_name}")
    parts: list[Part] = [attachment_part(notice_pdf_bytes(case.a), SHORT_NAME)]
    for i in range(1, extra_parts + 1):
        parts.append(
            text_part(
                f"memo {i}\n", charset="us-ascii", cte="7bit", attachment_name=f"memo_{i:03d}.txt"
            )
        )
    data = mail_with_attachments(env, greeting(case), parts, tag=case.name)
    exp = expected(
        [notice(case.a, page(f"attachment:{SHORT_NAME}"))], [problem("too_many_parts", "message")]
    )
    return _eml(case, data, exp)


def bare_pdf(case: Case) -> Sample:
    filename = f"{case.name}.pdf"
    exp = expected([notice(case.a, page(f"file:{filename}"))])
    return Sample(case.name, filename, notice_pdf_bytes(case.a), exp)


def pdf_bomb(case: Case) -> Sample:
    exp = expected(problems=[problem("attachment_too_large", "attachment:bomb.pdf")])
    return _single(case, render_decompression_bomb_pdf(), "bomb.pdf", exp=exp)


def slow_pdf(case: Case) -> Sample:
    exp = expected(problems=[problem("read_timeout", "attachment:slow.pdf")])
    return _single(case, render_slow_pdf(), "slow.pdf", exp=exp)


def office_beside_pdf(case: Case) -> Sample:
    """The notice PDF with the 内訳書 as .xlsx, a cover letter as .docx and one as .odt: the
    office documents are not archives to search, and not problems."""
    env = envelope(case, f"【電子保証】{case.a.project_name}（内訳書添付）")
    letter = [f"{case.a.project_name}", "電子保証の「認証キーのお知らせ」を提出いたします。"]
    parts = [
        attachment_part(notice_pdf_bytes(case.a), SHORT_NAME),
        attachment_part(xlsx(), "工事費内訳書.xlsx", ctype=XLSX_TYPE),
        attachment_part(docx(letter), "送付状.docx", ctype=DOCX_TYPE),
        attachment_part(odf(letter), "送付状.odt", ctype=ODT_TYPE),
    ]
    data = mail_with_attachments(env, greeting(case), parts, tag=case.name)
    return _eml(case, data, expected([notice(case.a, page(f"attachment:{SHORT_NAME}"))]))


def damaged_office_beside_pdf(case: Case) -> Sample:
    """The notice PDF with a truncated .xlsx and a truncated .odt sent as an octet-stream
    named without extension: damage in a file that cannot hold a notice is no problem of the
    mail (the second is known by its local headers alone)."""
    env = envelope(case, f"【電子保証】{case.a.project_name}")
    parts = [
        attachment_part(notice_pdf_bytes(case.a), SHORT_NAME),
        attachment_part(truncated(xlsx()), "工事費内訳書.xlsx", ctype=XLSX_TYPE),
        attachment_part(truncated(odf(["送付状"])), "送付状", ctype="application/octet-stream"),
    ]
    data = mail_with_attachments(env, greeting(case), parts, tag=case.name)
    return _eml(case, data, expected([notice(case.a, page(f"attachment:{SHORT_NAME}"))]))

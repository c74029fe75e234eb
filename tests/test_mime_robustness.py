"""Malformed and unusual MIME: every source yields a result, nothing escapes the reader."""

from __future__ import annotations

import io
import zipfile

from mailbot.samples.notice_pdf import NoticeFields, render_notice_pdf
from parsers import Reader

from .notices import FIELDS as EJCS

FIELDS = NoticeFields(**{**EJCS.__dict__, "guarantee_number": "35075-00002M",
                         "auth_key": "Qw2Er4Ty6Ui0"})

BODY = "保証契約番号：35075-00001M\r\n認証キー：Z28YUEAJ38ux\r\n"


def read(raw: bytes):
    return Reader().read_bytes(raw, "m.eml", "m.eml")


def mail(parts: list[bytes], top: bytes = b"") -> bytes:
    out = [b"From: a@example.jp\r\nTo: keiyaku@issuer.example.jp\r\nSubject: t\r\n" + top,
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"]
    for part in parts:
        out.append(b"--b\r\n" + part + b"\r\n")
    out.append(b"--b--\r\n")
    return b"".join(out)


def text_part(body: str, headers: str = "Content-Type: text/plain; charset=utf-8") -> bytes:
    return f"{headers}\r\n\r\n{body}".encode()


def b64_part(headers: str, data: bytes) -> bytes:
    import base64

    return f"{headers}\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode() + base64.encodebytes(data)


def test_broken_encoded_word_in_a_file_name_does_not_stop_the_mail():
    raw = mail([text_part(BODY), b64_part(
        'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="=?UTF-8?B?A?="',
        render_notice_pdf(FIELDS))])
    result = read(raw)
    assert {n.guarantee_number for n in result.notices} == {"35075-00001M", "35075-00002M"}


def test_deep_nesting_is_a_problem_not_a_crash():
    depth = 1000
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    raw = ("From: a@example.jp\r\nMIME-Version: 1.0\r\n" + head + "Content-Type: text/plain\r\n\r\n"
           + BODY).encode()
    result = read(raw)
    assert [p.code for p in result.problems] == ["too_many_parts"]


def test_damaged_zip_member_is_unreadable_and_the_rest_is_read():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.pdf", render_notice_pdf(FIELDS))
    data = bytearray(buf.getvalue())
    data[60:80] = b"\x00" * 20  # inside the deflated stream
    raw = mail([text_part(BODY), b64_part(
        'Content-Type: application/zip; name="a.zip"', bytes(data))])
    result = read(raw)
    assert [n.guarantee_number for n in result.notices] == ["35075-00001M"]
    assert [p.code for p in result.problems] == ["unreadable_attachment"]


def test_stored_zip_of_pdfs_is_read_as_a_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("1.pdf", render_notice_pdf(FIELDS))
        other = NoticeFields(**{**FIELDS.__dict__, "guarantee_number": "35075-00003M",
                                "auth_key": "As1Df3Gh5Jl7"})
        archive.writestr("2.pdf", render_notice_pdf(other))
    result = read(mail([b64_part('Content-Type: application/zip; name="n.zip"', buf.getvalue())]))
    assert [n.origin for n in result.notices] == [
        "attachment:n.zip/1.pdf#page=1", "attachment:n.zip/2.pdf#page=1"
    ]


def test_plain_stub_with_the_notice_in_the_html_alternative():
    alt = (b'Content-Type: multipart/alternative; boundary="a"\r\n\r\n--a\r\n'
           + text_part("このメールはHTML形式です。") + b"\r\n--a\r\n"
           + text_part("<p>保証契約番号：35075-00001M<br>認証キー：Z28YUEAJ38ux</p>",
                       "Content-Type: text/html; charset=utf-8") + b"\r\n--a--\r\n")
    assert [n.auth_key for n in read(mail([alt])).notices] == ["Z28YUEAJ38ux"]


def test_text_attachment_is_read_with_its_origin():
    raw = mail([text_part("添付をご確認ください。"), text_part(
        BODY, 'Content-Type: text/plain; charset=utf-8\r\n'
              'Content-Disposition: attachment; filename="notice.txt"')])
    assert [n.origin for n in read(raw).notices] == ["attachment:notice.txt"]


def test_a_pdf_marker_in_the_subject_does_not_make_a_mail_a_pdf():
    raw = b"From: a@example.jp\r\nSubject: %PDF-1.7 test\r\n\r\n" + BODY.encode()
    assert [n.auth_key for n in read(raw).notices] == ["Z28YUEAJ38ux"]


def test_renamed_file_is_reported():
    raw = mail([b64_part('Content-Type: application/zip; name="a.zip"', b"not a zip at all")])
    assert [(p.code, p.origin) for p in read(raw).problems] == [
        ("unreadable_attachment", "attachment:a.zip")
    ]

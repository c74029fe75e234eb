"""Regression tests from a hostile review of the issue-10 fixes.

- A From / Reply-To that does not name exactly one mailbox every reader agrees on gets no
  reply: ``victim@other.example.jp <a@maru.example.jp>`` made mailbot answer the unquoted
  display name while the sender's mail program shows the angle-bracket address; a header of
  two authors was answered to the first one.
- A display name in raw ISO-2022-JP (old Japanese mailers) does not hide the address: the
  ``(B`` of its closing escape opened a comment that swallowed it, and the contractor got no
  reply.
- A zip that holds a notice PDF is searched even when it also holds a ``[Content_Types].xml``
  or starts with a ``mimetype`` member: the notice was silently ignored as an office document.
"""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage

import pytest

from mailbot.pipeline.decide import reply_blocked
from mailbot.pipeline.facts import mail_facts
from mailbot.samples.notice_pdf import render_notice_pdf
from parsers import Reader
from parsers.filekind import ARCHIVE, DOCUMENT, sniff

from .notices import FIELDS


def facts(from_header: bytes, reply_to: bytes | None = None):
    head = b"From: " + from_header + b"\r\n"
    if reply_to is not None:
        head += b"Reply-To: " + reply_to + b"\r\n"
    raw = head + b"To: keiyaku@city.example.jp\r\nSubject: s\r\n\r\nbody\r\n"
    return mail_facts(raw, "keiyaku")


@pytest.mark.parametrize("header", [
    b"victim@other.example.jp <a@maru.example.jp>",
    b"a@maru.example.jp <victim@other.example.jp>",
    b"a@maru.example.jp, victim@other.example.jp",
    b"grp: a@maru.example.jp, victim@other.example.jp;",
    b'"x" <a@maru.example.jp> <victim@other.example.jp>',
    b"a@maru.example.jp\r\n\tBcc: victim@other.example.jp",
])
def test_ambiguous_sender_gets_no_reply(header: bytes) -> None:
    found = facts(header)
    why = reply_blocked(found)
    assert why is not None and "not the one mailbox" in why


def test_ambiguous_reply_to_gets_no_reply() -> None:
    found = facts(b"a@maru.example.jp", reply_to=b"a@maru.example.jp, victim@other.example.jp")
    assert reply_blocked(found) is not None


@pytest.mark.parametrize("header", [
    b"a@maru.example.jp",
    b"<a@maru.example.jp>",
    b"Taro.Yamada <a@maru.example.jp>",
    b'"Yamada, Taro" <a@maru.example.jp>',
    b"a@maru.example.jp (victim@other.example.jp)",
    b"=?UTF-8?B?dmljdGltQG90aGVyLmV4YW1wbGUuanAsIA==?= <a@maru.example.jp>",
    "〇〇建設 <a@maru.example.jp>".encode(),
    "〇〇建設 <a@maru.example.jp>".encode("cp932"),
    "〇〇建設 <a@maru.example.jp>".encode("iso-2022-jp"),
    "〇〇建設(株) <a@maru.example.jp>".encode("iso-2022-jp"),
    b"<@relay.example.jp:a@maru.example.jp>",
    b"grp: a@maru.example.jp;",
])
def test_one_mailbox_is_answered(header: bytes) -> None:
    found = facts(header)
    assert found.sender == "a@maru.example.jp"
    assert reply_blocked(found) is None


def test_raw_iso_2022_jp_name_in_to_keeps_the_address() -> None:
    raw = (b"From: a@maru.example.jp\r\nTo: " + "〇〇市 契約課".encode("iso-2022-jp")
           + b" <keiyaku@city.example.jp>\r\nSubject: s\r\n\r\nbody\r\n")
    assert mail_facts(raw, "keiyaku").to_cc == ("keiyaku@city.example.jp",)


PDF = render_notice_pdf(FIELDS)


def notice_zip(first: tuple[str, bytes] | None = None,
               extra: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if first is not None:
            archive.writestr(zipfile.ZipInfo(first[0]), first[1])
        archive.writestr("認証キーのお知らせ.pdf", PDF)
        for name, data in extra:
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_mail(data: bytes, name: str) -> bytes:
    message = EmailMessage()
    message["From"] = "a@maru.example.jp"
    message["To"] = "keiyaku@city.example.jp"
    message["Subject"] = "認証キーのお知らせ"
    message.set_content("〇〇建設です。通知書を送ります。")
    message.add_attachment(data, maintype="application", subtype="zip", filename=name)
    return message.as_bytes()


@pytest.mark.parametrize("name", ["notice.zip", "notice.xlsx", "notice.bin"])
@pytest.mark.parametrize("data", [
    notice_zip(extra=(("[Content_Types].xml", b"<Types/>"),)),
    notice_zip(first=("mimetype", b"application/vnd.oasis.opendocument.text")),
    notice_zip(extra=(("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),)),
], ids=["content-types", "mimetype", "manifest"])
def test_container_holding_a_notice_pdf_is_searched(data: bytes, name: str) -> None:
    assert sniff(name, data).kind == ARCHIVE
    result = Reader().read_bytes(zip_mail(data, name), "review")
    assert [n.guarantee_number for n in result.notices] == [FIELDS.guarantee_number]
    assert not result.problems


def test_real_office_document_is_still_not_searched() -> None:
    from mailbot.samples.office import docx, xlsx
    assert sniff("a.xlsx", xlsx()).kind == DOCUMENT
    assert sniff("a.docx", docx(["本文"])).kind == DOCUMENT


def test_folded_encoded_display_name_is_answered() -> None:
    """As the stdlib writes a long Japanese display name: folded after "From:"."""
    message = EmailMessage()
    message["From"] = "〇〇建設 工務部 <tanto@maru-kensetsu.example.jp>"
    message["To"] = "keiyaku@city.example.jp"
    message.set_content("本文")
    found = mail_facts(message.as_bytes(), "keiyaku")
    assert found.sender == "tanto@maru-kensetsu.example.jp"
    assert reply_blocked(found) is None


@pytest.mark.parametrize("header", ["From", "Reply-To", "To"])
def test_deeply_nested_comments_in_an_address_are_no_crash(header: str) -> None:
    """The stdlib's address parser recurses once per nested comment: a sender's 5,000
    nested parentheses raised RecursionError out of mail_facts (found by the fuzz test)."""
    nested = "(" * 5000 + ")" * 5000
    lines = {"From": "tanto@maru.example.jp", "To": "keiyaku@city.example.jp"}
    lines[header] = f"tanto@{nested}maru.example.jp"
    raw = "".join(f"{k}: {v}\r\n" for k, v in lines.items()) + "Subject: s\r\n\r\nbody\r\n"
    facts = mail_facts(raw.encode(), "keiyaku")
    if header == "To":
        assert facts.sender == "tanto@maru.example.jp"
    else:
        assert reply_blocked(facts) is not None  # no reply to an address nobody can parse

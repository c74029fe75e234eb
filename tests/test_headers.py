"""Header decoding (parsers.headers): one rule for every header mailbot reads, the same
Japanese charset rules as bodies, never a raw encoded word, never a control character."""

from __future__ import annotations

import base64
import itertools
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.pipeline.facts import mail_facts
from mailbot.replies.safe import is_mailbox
from mailbot.store.schema import ledger as ledger_table
from mailbot.store.schema import reply_requests
from parsers import Reader
from parsers.headers import clean_header_text, decode_header_text, decode_header_value
from parsers.limits import Limits
from parsers.mime import Attachment, walk_message

from .configs import issuer_config

NOW = datetime(2026, 12, 26, 23, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
SERIAL = itertools.count(1)
SUBJECT = "【電子保証】①〇〇建設㈱ 〇〇浄水場修繕工事"  # ① and ㈱ are NEC specials (cp932 only)


def b_word(text: str, label: str, codec: str) -> str:
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


def jis_bytes(text: str) -> bytes:
    """ISO-2022-JP as Windows writes it: cp932's NEC row 13 inside JIS X 0208 escapes."""
    out = bytearray(b"\x1b$B")
    for char in text:
        s1, s2 = char.encode("cp932")
        # Shift_JIS → JIS X 0208 (the inverse of parsers.charset._convert_run)
        s1 -= 0x70 if s1 <= 0x9F else 0xB0
        s1 = s1 * 2 - 1
        if s2 >= 0x9F:
            s1, s2 = s1 + 1, s2 - 0x7E
        else:
            s2 -= 0x1F if s2 < 0x7F else 0x20
        out += bytes((s1, s2))
    return bytes(out + b"\x1b(B")


def raw_mail(subject_header: bytes, from_header: bytes = b"a@maru.example.jp") -> bytes:
    return (b"From: " + from_header + b"\r\nTo: keiyaku@issuer.example.jp\r\n"
            b"Message-ID: <h1@maru.example.jp>\r\nSubject: " + subject_header +
            b"\r\n\r\nbody\r\n")


@pytest.mark.parametrize("label", ["Shift_JIS", "shift-jis", "SJIS", "windows-31j", "CP932"])
def test_shift_jis_labels_carry_cp932(label):
    assert decode_header_text(b_word(SUBJECT, label, "cp932")) == SUBJECT


@pytest.mark.parametrize("label", ["ISO-2022-JP", "iso-2022-jp", "csISO2022JP"])
def test_iso_2022_jp_labels_carry_cp932(label):
    word = f"=?{label}?B?{base64.b64encode(jis_bytes('①〇〇建設㈱')).decode()}?="
    assert decode_header_text(word) == "①〇〇建設㈱"


def test_a_character_split_across_two_words_is_joined():
    data = SUBJECT.encode("cp932")
    words = [f"=?Shift_JIS?B?{base64.b64encode(data[:5]).decode()}?=",
             f"=?Shift_JIS?B?{base64.b64encode(data[5:]).decode()}?="]
    assert decode_header_text("\r\n ".join(words)) == SUBJECT


def test_the_subject_in_mail_facts_and_the_ledger(tmp_path, store):
    raw = raw_mail(b_word(SUBJECT, "Shift_JIS", "cp932").encode())
    assert mail_facts(raw, "keiyaku").subject == SUBJECT
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    row = ledger.receive("keiyaku", raw).id
    assert ledger.get(row).subject == SUBJECT


@pytest.mark.parametrize("broken, readable", [
    ("=?UTF-8?B?5pel5pys?", "日本"),  # no "?=" at the end
    ("=?UTF-8?B?5pel5pys", "日本"),  # cut off after the text
    ("=?UTF-8?B?5pel5pys=?=", "日本"),  # bad padding
    ("=?x-unknown?B?" + base64.b64encode("日本".encode("cp932")).decode() + "?=", "日本"),
    ("=?UTF-8?Q?=E6=97=A5=E6=9C=AC?=", "日本"),
    ("=?UTF-8?X?plain?=", "plain"),  # no such encoding: its text is all there is
    ("=?UTF-8*ja?B?5pel5pys?=", "日本"),  # RFC 2231 language
    ("前 =?UTF-8?B?5pel?= 後", "前 日 後"),
])
def test_a_broken_encoded_word_is_readable_text(broken, readable):
    decoded = decode_header_text(broken)
    assert decoded == readable
    assert "=?" not in decoded


def test_a_word_with_bytes_no_charset_decodes_is_marked_lossy():
    decoded = decode_header_value("=?UTF-8?B?" + base64.b64encode(b"\x80\x81").decode()
                                  + "?=")
    assert decoded.lossy and "=?" not in decoded.text


@pytest.mark.parametrize("codec", ["cp932", "utf-8"])
def test_raw_8bit_header_bytes_are_guessed_like_bodies(codec, tmp_path, store):
    raw = raw_mail(SUBJECT.encode(codec), "〇〇建設 <a@maru.example.jp>".encode(codec))
    facts = mail_facts(raw, "keiyaku")
    assert facts.subject == SUBJECT
    assert facts.sender == facts.author == "a@maru.example.jp"
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    entry = ledger.get(ledger.receive("keiyaku", raw).id)
    assert entry.subject == SUBJECT and entry.sender == "〇〇建設 <a@maru.example.jp>"


def test_raw_iso_2022_jp_escapes_in_a_header():
    raw = raw_mail(jis_bytes("①〇〇建設㈱"))
    assert mail_facts(raw, "keiyaku").subject == "①〇〇建設㈱"


def test_nul_cr_lf_and_other_controls_are_gone(tmp_path, store):
    raw = raw_mail(b"a\x00b\x1b[31m c\x7f\x85d =?UTF-8?Q?e=00=0D=0Af?=",
                   b"=?UTF-8?Q?=00evil=0D=0ABcc:_x?= <a@maru.example.jp>")
    facts = mail_facts(raw, "keiyaku")
    assert facts.subject == "ab [31m c d e f"
    assert facts.sender == "a@maru.example.jp"
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))  # PostgreSQL text refuses NUL
    row = ledger.receive("keiyaku", raw).id
    with store.engine.connect() as conn:
        stored = conn.execute(select(ledger_table.c.sender, ledger_table.c.subject)
                              .where(ledger_table.c.id == row)).one()
    for value in stored:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)
    assert stored.subject == facts.subject


def test_an_address_with_control_characters_is_not_turned_into_another_one():
    facts = mail_facts(raw_mail(b"s", b"<ab\x00c@maru.example.jp>"), "keiyaku")
    assert facts.sender != "abc@maru.example.jp"
    assert "\x00" not in (facts.sender or "")


def test_a_display_name_that_decodes_to_an_address_does_not_change_the_sender():
    name = b_word("evil@attacker.example.jp, <x@attacker.example.jp>", "UTF-8", "utf-8")
    facts = mail_facts(raw_mail(b"s", f"{name} <a@maru.example.jp>".encode()), "keiyaku")
    assert facts.sender == "a@maru.example.jp"


def test_lone_surrogates_never_come_out():
    for value in ("\ud800x", "a\udcff\udc80b", "=?UTF-8?Q?\udc81?="):
        text = decode_header_text(value)
        assert text.encode("utf-8")  # would raise on a lone surrogate
    assert clean_header_text("a\ud83d b") == "a\ufffd b"


def test_the_decoder_never_raises_on_odd_values():
    for value in ("=?", "=??=", "=?a?b?c?d?=", "=?" * 1000, "\x00" * 100, 12, b"bytes",
                  "=?UTF-8?B?" + "A" * 10001 + "?="):
        assert isinstance(decode_header_text(value), str)


def test_attachment_names_use_the_same_rules():
    message = EmailMessage()
    message["From"] = "a@maru.example.jp"
    message.set_content("本文")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                           filename="x.pdf")
    raw = message.as_bytes()
    word = b_word("①お知らせ㈱.pdf", "Shift_JIS", "cp932").encode()
    raw = raw.replace(b'filename="x.pdf"', b'filename="' + word + b'"')
    items = walk_message(raw, Limits()).items
    names = [item.name for item in items if isinstance(item, Attachment)]
    assert names == ["①お知らせ㈱.pdf"]
    assert mail_facts(raw, "keiyaku").attachment_names == ("①お知らせ㈱.pdf",)


HOSTILE_BYTES = [b"\x00", b"\r\n", b"\r\n ", b"\r", b"\n", b"\xff\xfe", b"\x1b$B", b"\x80",
                 b"=?Shift_JIS?B?gXmTZI5x?=", b"=?UTF-8?B?", b"?=", b"<", b">", b",", b'"',
                 "①〇〇建設㈱".encode("cp932"), "〇〇建設".encode(), "😀".encode(),
                 b"a" * 300, b"@", b"(", b")"]
header_bytes = st.lists(st.one_of(st.binary(max_size=12), st.sampled_from(HOSTILE_BYTES)),
                        max_size=6).map(b"".join)


@pytest.fixture
def pipeline_side(store, store_url, tmp_path, sink):
    path = tmp_path / "mailbot.toml"
    path.write_text(f'[smtp]\nhost = "127.0.0.1"\nport = {sink.settings.port}\n'
                    'from = "keiyaku@issuer.example.jp"\n'
                    + issuer_config(store_url, tmp_path / "spool").replace(
                        '[issuers.maru]\nname = "〇〇市"\n',
                        '[issuers.maru]\nname = "〇〇市"\nstaff = ["kensa@issuer.example.jp"]\n'),
                    encoding="utf-8")
    config = load_config(path)
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    return ledger, Pipeline(config, store, ledger, Reader()), Outgoing(config, store)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(subject=header_bytes, sender=header_bytes, name=header_bytes, refs=header_bytes,
       filename=header_bytes)
def test_hostile_header_bytes_get_a_decision_and_a_renderable_reply(
        pipeline_side, subject, sender, name, refs, filename):
    """What the hostile-mail run found quarantined (UnicodeEncodeError, NUL refused by
    PostgreSQL) is decided: every mail, and every reply it deserves is rendered."""
    ledger, pipeline, replier = pipeline_side
    serial = next(SERIAL)
    raw = (b"From: " + name + b" <tanto" + sender + b"@maru.example.jp>\r\n"
           b"To: keiyaku@issuer.example.jp\r\nSubject: " + subject + b"\r\n"
           b"Message-ID: <f" + str(serial).encode() + b"@maru.example.jp>\r\n"
           b"References: " + refs + b"\r\nIn-Reply-To: " + refs + b"\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           + "保証契約番号：35075-00001M\r\n認証キー：Z28YUEAJ38ux\r\n".encode() +
           b"--b\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Disposition: attachment; filename=\"" + filename + b"\"\r\n\r\nxx\r\n"
           b"--b--\r\n")
    row = ledger.receive("keiyaku", raw, now=NOW).id
    while pipeline.process_one():
        pass
    entry = ledger.get(row)
    assert entry.state in ("decided", "replied"), entry.last_error
    replier.queue(NOW)
    with ledger.engine.connect() as conn:
        requests = conn.execute(select(reply_requests.c.state, reply_requests.c.to_addr)).all()
    for state, to_addr in requests:
        assert state != "stored", to_addr  # rendered, or failed for good: never left to loop
        if state == "failed":  # only an address no SMTP server would take
            assert not is_mailbox(to_addr), to_addr


def test_an_address_longer_than_any_address_is_no_sender(tmp_path, store):
    raw = raw_mail(b"s", b"<" + b"a" * 300 + b"@maru.example.jp>")
    facts = mail_facts(raw, "keiyaku")
    assert facts.sender is None and facts.author is None

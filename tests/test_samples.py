"""Checks of the sample generator itself (mailbot.samples), not of the reader.

Every sample builds and is deterministic, mails parse with the stdlib, archives and bombs
have the shape they claim, and each rendered notice page really carries the labels and
values its ``expected`` says (read back with pdfplumber, or pypdfium2 where pdfminer cannot).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import unicodedata
import zipfile
import zlib
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pdfplumber
import pypdfium2
import pytest

from mailbot.samples import (
    VARIANTS,
    NoticeFields,
    all_samples,
    corpus,
    render_decompression_bomb_pdf,
    render_notice_pdf,
)
from mailbot.samples.catalog import HOSTILE, expected_lines
from mailbot.samples.jis import encode_iso2022jp_cp932
from parsers.model import PROBLEM_CODES as CONTRACT_PROBLEM_CODES
from parsers.pdfchars import PDFIUM_LOCK

ROOT = Path(__file__).resolve().parents[1]
PROBLEM_CODES = set(CONTRACT_PROBLEM_CODES)
NOTICE_KEYS = [
    "guarantee_number",
    "auth_key",
    "kind",
    "project_name",
    "contractor",
    "surety",
    "origin",
]
# Pages pdfminer reads only as (cid:N); the expected notice comes from pypdfium2.
CID_ONLY = {"unmapped_glyphs", "owner_password_cid"}
# Pages whose text pdfminer cannot put in order (a turned or mirrored text matrix): read with
# pypdfium2; a mirrored line comes out right to left, so there label and value are only
# checked to be on the page.
PDFIUM_ONLY = CID_ONLY | {"text_matrix_rotated", "mirrored_text"}
MIRRORED = {"mirrored_text"}
# Header-row tables: labels on one row, values on the row below.
HEADER_TABLES = {"generic_header_table", "rotate_270", "spaced_table_cells"}
FIELDS = NoticeFields(
    "35075-00001M",
    "Z28YUEAJ38ux",
    "前払金保証",
    "〇〇浄水場△△修繕工事",
    "〇〇建設　株式会社",
    "東日本建設業保証株式会社",
)


@pytest.fixture(scope="module")
def samples():
    return {s.name: s for s in all_samples()}


def parse(data: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[return-value]


def attachments(msg: EmailMessage) -> dict[str, bytes]:
    """Every attachment by origin path (zip members and forwarded mails unfolded)."""
    out: dict[str, bytes] = {}
    for part in msg.iter_attachments():
        name = part.get_filename()
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()[0]
            for sub, data in attachments(inner).items():
                out[f"{name or 'forwarded.eml'}/{sub}"] = data
            continue
        data = part.get_payload(decode=True)
        out[name] = data
        if name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    if info.flag_bits & 1 or info.file_size > 50_000_000:
                        continue
                    member = info.filename.encode("cp437").decode("cp932")
                    out[f"{name}/{member}"] = zf.read(info)
    return out


def pdf_for_origin(sample, origin: str) -> tuple[bytes, int]:
    path, _, page_no = origin.partition("#page=")
    kind, _, name = path.partition(":")
    if kind == "file":
        return sample.data, int(page_no)
    return attachments(parse(sample.data))[name], int(page_no)


def squash(text: str) -> str:
    """NFKC, fold what NFKC does not (U+2212, radicals supplement), drop white space/colons."""
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    text = text.replace("\u2ed1", "長").replace("\u2ec4", "西")
    return re.sub(r"[\s:]", "", text)


def pdfium_text(data: bytes, index: int) -> str:
    """A page's text from PDFium, under the process's PDFium lock and with every object
    closed here (a finalizer would call PDFium from whichever thread collects it)."""
    with PDFIUM_LOCK:
        doc = pypdfium2.PdfDocument(data)
        try:
            page = doc[index]
            textpage = page.get_textpage()
            text = str(textpage.get_text_range())
            textpage.close()
            page.close()
            return text
        finally:
            doc.close()


def page_text(name: str, data: bytes, page_no: int) -> str:
    if name in PDFIUM_ONLY:
        return pdfium_text(data, page_no - 1)
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        page = pdf.pages[page_no - 1]
        if name == "fake_bold":
            page = page.dedupe_chars()
        return page.extract_text()


def test_catalogue_is_complete_and_well_formed(samples):
    assert list(samples) == list(VARIANTS)
    assert len(samples) >= 35
    for s in samples.values():
        assert s.filename == f"{s.name}.pdf" if s.name == "bare_pdf" else f"{s.name}.eml"
        assert set(s.expected) == {"notices", "problems"}
        for n in s.expected["notices"]:
            assert list(n) == NOTICE_KEYS
            assert re.fullmatch(r"\d{5}-\d{5,7}[A-Z]?", n["guarantee_number"])
            assert re.fullmatch(r"[A-Za-z0-9]{12}", n["auth_key"])
        for p in s.expected["problems"]:
            assert set(p) == {"code", "origin"} and p["code"] in PROBLEM_CODES
        if any(p["code"] == "no_notice_found" for p in s.expected["problems"]):
            assert s.expected == {
                "notices": [],
                "problems": [{"code": "no_notice_found", "origin": "message"}],
            }


def test_keys_are_distinct_and_include_confusables(samples):
    pairs = [
        (n["guarantee_number"], n["auth_key"])
        for s in samples.values()
        for n in s.expected["notices"]
    ]
    assert len(pairs) == len(set(pairs))
    assert len({k for _n, k in pairs}) == len(pairs)
    keys = [k for _n, k in pairs]
    assert sum(bool(re.search("[O0]", k)) for k in keys) >= 10
    assert sum(bool(re.search("[l1I]", k)) for k in keys) >= 10


def test_generation_is_deterministic(samples):
    again = {s.name: s for s in all_samples()}
    for name, s in samples.items():
        assert again[name].data == s.data, name


def test_mails_parse_with_stdlib(samples):
    for s in samples.values():
        if s.filename.endswith(".pdf"):
            assert s.data.startswith(b"%PDF-")
            continue
        msg = parse(s.data)
        assert msg["From"] and msg["To"] == "keiyaku@issuer.example.jp", s.name
        assert msg["Message-ID"] and msg["Subject"], s.name
        assert b"\r\n" in s.data and b"\n\n" not in s.data.replace(b"\r\n", b""), s.name


@pytest.mark.parametrize("name", [n for n in VARIANTS if n not in HOSTILE])
def test_notice_pages_carry_labels_and_values(samples, name):
    s = samples[name]
    for n in s.expected["notices"]:
        if n["origin"] == "body":
            continue
        data, page_no = pdf_for_origin(s, n["origin"])
        text = squash(page_text(name, data, page_no))
        if name in MIRRORED:
            for word in ("認証キー", n["auth_key"], "保証契約番号", n["guarantee_number"]):
                assert word in text, (name, word, text)
        elif name not in HEADER_TABLES:
            assert "認証キー" + n["auth_key"] in text, (name, text)
            assert "保証契約番号" + n["guarantee_number"] in text, (name, text)
        else:  # header-row table: labels on one row, values on the row below
            assert "保証契約番号認証キー保証区分" + n["guarantee_number"] + n["auth_key"] in text
        for field in ("kind", "project_name", "contractor", "surety"):
            assert squash(n[field]) in text, (name, field, text)


def test_body_notices_are_typed_in_the_body(samples):
    for s in samples.values():
        body_notices = [n for n in s.expected["notices"] if n["origin"] == "body"]
        if not body_notices:
            continue
        msg = parse(s.data)
        part = msg.get_body(("plain", "html"))
        raw = part.get_payload(decode=True)
        label = part.get_content_charset()
        text = raw.decode("utf-8") if label == "iso-8859-1" else None
        if text is None:
            codec = {"shift_jis": "cp932", "iso-2022-jp": None}.get(label, label)
            text = raw.decode(codec) if codec else _decode_jis_cp932(raw)
        for n in body_notices:
            assert n["guarantee_number"] in text and n["auth_key"] in text, s.name


def _decode_jis_cp932(raw: bytes) -> str:
    """Reverse of encode_iso2022jp_cp932, for the test only."""
    out = bytearray()
    kanji = False
    i = 0
    while i < len(raw):
        if raw[i] == 0x1B:
            kanji = raw[i + 1 : i + 3] == b"$B"
            i += 3
        elif kanji:
            j1, j2 = raw[i], raw[i + 1]
            s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
            s2 = j2 + (0x1F if j2 <= 0x5F else 0x20) if j1 % 2 else j2 + 0x7E
            out += bytes([s1, s2])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return out.decode("cp932")


def test_iso2022jp_writer_keeps_cp932_extensions():
    text = "㈱〇〇建設の①番です。ABC"
    data = encode_iso2022jp_cp932(text)
    assert data.startswith(b"\x1b$B-j")  # ㈱ is row 13 cell 74
    assert b"$N-!" in data  # の① : ① is row 13 cell 1
    assert data.endswith(b"ABC") and max(data) < 0x80
    assert _decode_jis_cp932(data) == text
    plain = "保証契約番号：35075-00001M"
    assert encode_iso2022jp_cp932(plain) == plain.encode("iso2022_jp")


def test_body_charsets(samples):
    sjis = parse(samples["body_shift_jis"].data).get_body(("plain",))
    assert sjis.get_content_charset() == "shift_jis"
    assert b"\x87\x40" in sjis.get_payload(decode=True)  # cp932 ①
    euc = parse(samples["body_euc_jp"].data).get_body(("plain",))
    assert "保証契約番号" in euc.get_payload(decode=True).decode("euc_jp")
    wrong = parse(samples["body_wrong_label"].data).get_body(("plain",))
    assert wrong.get_content_charset() == "iso-8859-1"
    assert "認証キー" in wrong.get_payload(decode=True).decode("utf-8")
    html = parse(samples["html_only"].data)
    assert [p.get_content_type() for p in html.walk()] == ["text/html"]
    assert "&#65306;" in html.get_content()
    raw = samples["body_iso2022jp_cp932"].data
    assert b"Subject: =?ISO-2022-JP?B?" in raw and b"charset=ISO-2022-JP" in raw


def test_filename_header_styles(samples):
    outlook = samples["outlook_rfc2047_filename"].data
    assert b'filename="=?ISO-2022-JP?B?' in outlook
    mac = samples["mac_name_filename_star"].data
    assert b"filename*=ISO-2022-JP''%1B%24B" in mac and b'name="=?ISO-2022-JP?B?' in mac
    first = samples["ejcs_cid"].data
    assert b"filename*=UTF-8''" in first
    octet = parse(samples["octet_stream"].data)
    att = next(octet.iter_attachments())
    assert att.get_content_type() == "application/octet-stream"
    assert att.get_filename() == "download"


def test_cp932_zip_has_no_utf8_flag(samples):
    data = attachments(parse(samples["zip_cp932"].data))["書類.zip"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    assert all(not info.flag_bits & 0x800 for info in infos)
    names = [info.filename.encode("cp437") for info in infos]
    assert names == ["認証キーのお知らせ.pdf".encode("cp932"), "請負代金内訳書.pdf".encode("cp932")]
    assert "認証キーのお知らせ.pdf".encode("cp932") in data


def test_encrypted_zip_needs_password(samples):
    data = attachments(parse(samples["zip_encrypted"].data))["書類.zip"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.infolist()[0]
        assert info.flag_bits & 1
        with pytest.raises(RuntimeError):
            zf.read(info)
        assert zf.read(info, pwd=b"x7Gq2LpR").startswith(b"%PDF-")
    assert "別メール" in parse(samples["zip_encrypted"].data).get_body(("plain",)).get_content()


def test_zip_bomb_is_small_but_huge_inside(samples):
    assert len(samples["zip_bomb"].data) < 2_000_000
    data = attachments(parse(samples["zip_bomb"].data))["書類一式.zip"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        (info,) = zf.infolist()
    assert info.file_size >= 1 << 30 and info.compress_size < 2_000_000


def test_pdf_bomb_is_tiny_and_inflates_to_a_gibibyte():
    data = render_decompression_bomb_pdf()
    assert len(data) < 2048
    body = data.split(b"stream\n", 1)[1].rsplit(b"\nendstream", 1)[0]
    inner = zlib.decompress(zlib.decompress(body))
    d = zlib.decompressobj()
    total, chunk = 0, inner
    while chunk:
        total += len(d.decompress(chunk, 1 << 24))
        chunk = d.unconsumed_tail
    assert total >= 1 << 30 and d.eof
    with PDFIUM_LOCK:
        doc = pypdfium2.PdfDocument(data)
        pages = len(doc)
        doc.close()
    assert pages == 1


def test_encrypted_pdf_needs_a_password(samples):
    data = attachments(parse(samples["encrypted_pdf"].data))["認証キーのお知らせ.pdf"]
    with pytest.raises(Exception):  # noqa: B017 - pdfplumber wraps pdfminer's error
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pdf.pages[0].extract_text()
    with pdfplumber.open(io.BytesIO(data), password="Kensetsu2026") as pdf:
        assert "Z" in pdf.pages[0].extract_text() or pdf.pages[0].chars


def test_unmapped_glyphs_pdf_is_cid_in_pdfminer_only(samples):
    for name in CID_ONLY:
        data = attachments(parse(samples[name].data))["認証キーのお知らせ.pdf"]
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            text = pdf.pages[0].extract_text()
        assert "(cid:" in text and "保証契約番号" not in text
        assert "保証契約番号" in pdfium_text(data, 0)


def test_image_only_and_corrupt_pdfs(samples):
    data = attachments(parse(samples["image_only"].data))["認証キーのお知らせ_スキャン.pdf"]
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        assert pdf.pages[0].chars == [] and len(pdf.pages[0].images) == 1
    broken = attachments(parse(samples["corrupt_pdf"].data))["認証キーのお知らせ.pdf"]
    with pytest.raises(Exception):  # noqa: B017
        with pdfplumber.open(io.BytesIO(broken)) as pdf:
            pdf.pages[0].extract_text()


def test_slow_pdf_is_valid_and_not_too_big(samples):
    data = attachments(parse(samples["slow_pdf"].data))["slow.pdf"]
    assert len(data) < 5_000_000
    text = pdfium_text(data, 0)
    assert len(text) >= 200_000


def test_producer_quirks_are_in_the_text_layer():
    def chars(**opts):
        with pdfplumber.open(io.BytesIO(render_notice_pdf(FIELDS, **opts))) as pdf:
            return "".join(c["text"] for c in pdf.pages[0].chars)

    assert "工 事 名" in chars(font="ttf")
    assert "工事名" in chars(font="ttf", letter_spaced=True)  # spacing without space chars
    kangxi = chars(font="ttf", kangxi=True)
    assert "\u2f2f 事 名" in kangxi
    fw = chars(fullwidth_values=True)
    assert "３５０７５\u2212００００１Ｍ" in fw and "Ｚ２８ＹＵＥＡＪ３８ｕｘ" in fw
    assert len(chars(fake_bold=True)) == 2 * len(chars())


def test_kangxi_sample_uses_radicals_supplement(samples):
    data = attachments(parse(samples["kangxi_radicals"].data))["認証キーのお知らせ.pdf"]
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        text = "".join(c["text"] for c in pdf.pages[0].chars)
    assert "\u2ed1坂配水池改良工事" in text and "\u2f2f" in text


def test_too_many_parts(samples):
    msg = parse(samples["too_many_parts"].data)
    atts = list(msg.iter_attachments())
    assert len(atts) == 301 and atts[0].get_content_type() == "application/pdf"


def test_cid_font_needs_no_font_file(tmp_path):
    code = (
        "from mailbot.samples import notice_pdf, special_pdfs\n"
        f"notice_pdf.IPAEX_FONT_PATH = notice_pdf.Path({str(tmp_path / 'none.ttf')!r})\n"
        "f = notice_pdf.NoticeFields('1-1', 'k', '前払金保証', 'p', 'c', 's')\n"
        "assert notice_pdf.render_notice_pdf(f, font='cid').startswith(b'%PDF')\n"
        "assert special_pdfs.render_image_only_pdf(f).startswith(b'%PDF')\n"
        "try:\n    notice_pdf.render_notice_pdf(f, font='ttf')\n"
        "except notice_pdf.FontNotFoundError as e:\n    assert 'none.ttf' in str(e)\n"
        "else:\n    raise SystemExit('no error')\n"
        "from mailbot.samples.catalog import TTF_VARIANTS, VARIANTS, all_samples\n"
        "assert len(all_samples(set(VARIANTS) - TTF_VARIANTS)) == len(VARIANTS) - len(TTF_VARIANTS)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_corpus_varies_and_is_cheap():
    mails = list(corpus(60, seed=3))
    assert len({m.name for m in mails}) == 60
    assert all(m.filename.endswith(".eml") for m in mails)
    numbers = {n["guarantee_number"] for m in mails for n in m.expected["notices"]}
    assert len(numbers) > 30
    assert [m.data for m in corpus(5, seed=3)] == [m.data for m in mails[:5]]


def test_main_writes_files_and_expected_jsonl(tmp_path, samples):
    subprocess.run(
        [sys.executable, "-m", "mailbot.samples", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    lines = (tmp_path / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == expected_lines(list(samples.values()))
    for line in lines:
        row = json.loads(line)
        assert (tmp_path / row["file"]).read_bytes() == samples[row["name"]].data

"""Office documents and other files that cannot hold a notice: not searched, never a problem.

An .xlsx / .docx (OOXML), an .odt / .ods (ODF), an .epub or a .jar starts like a zip but is
no archive of notices, and an image is no notice the reader can read. Such a file, intact,
truncated, over the size limit or locked inside a zip, is listed in `ParseResult.ignored`
and in the decision's record; it is never a problem, so a mail whose notices all verified
gets a clean confirmation, exactly one, through the real daemon. Archives, PDFs and mails,
which can hold a notice, keep their problems. The office files are built with `zipfile` in
their standards' structure (`mailbot.samples.office`), never committed as binaries.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from PIL import Image

from mailbot.config import load_config
from mailbot.pipeline.decide import decide
from mailbot.pipeline.facts import mail_facts
from mailbot.samples.notice_pdf import NoticeFields, render_notice_pdf
from mailbot.samples.office import docx, odf, truncated, xlsx
from mailbot.samples.zips import encrypted_zip
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import outbox
from parsers import Limits, Reader
from parsers.filekind import sniff

from .configs import issuer_config
from .issuer_daemon import accepted, decision, issuer_daemon, settled
from .notices import FIELDS, NOTICE_NAME, mail_with
from .test_contractor_pipeline import make_side, select_all
from .test_daemon import USER, wait_for
from .test_submission_forms import mail as submission_mail

PDF = render_notice_pdf(FIELDS)
NOTICE = "attachment:認証キーのお知らせ.pdf#page=1"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OCTET = "application/octet-stream"
OTHER = NoticeFields(**{**FIELDS.__dict__, "guarantee_number": "35075-00002M",
                        "auth_key": "Qw2Er4Ty6Ui0"})
TYPED_OTHER = "保証契約番号：35075-00002M\n認証キー：Qw2Er4Ty6Ui0"


def mail(*files: tuple[bytes, str, str], notice: bool = True) -> bytes:
    """A contractor's mail with the notice PDF (unless `notice=False`) and `files`
    ((bytes, file name, content type))."""
    attached = [(PDF, NOTICE_NAME, "application/pdf")] if notice else []
    return mail_with("〇〇建設 工務部 <tanto@maru-kensetsu.example.jp>", USER,
                     "【電子保証】〇〇浄水場△△修繕工事",
                     "〇〇市 契約検査課 御中\n\n認証キーのお知らせと内訳書をお送りします。\n",
                     attached + list(files)).as_bytes()


def read(raw: bytes, limits: Limits | None = None):
    return Reader(limits=limits).read_bytes(raw, "m.eml", "m.eml")


def person_zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def jar() -> bytes:
    return person_zip([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n"),
                       ("jp/example/kouji/Main.class", b"\xca\xfe\xba\xbe" + bytes(64))])


def photo(size: int = 64, kind: str = "JPEG") -> bytes:
    rng = random.Random(size)
    image = Image.frombytes("RGB", (size, size), bytes(rng.randrange(256)
                                                         for _ in range(size * size * 3)))
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


# -- the reader ---------------------------------------------------------------------------

OFFICE_FILES = {
    "xlsx": (xlsx(), "工事費内訳書.xlsx", XLSX, "document"),
    "docx": (docx(["送付状", "認証キーのお知らせを送付します。"]), "送付状.docx", DOCX, "document"),
    "odt": (odf(["送付状"]), "送付状.odt", "application/vnd.oasis.opendocument.text",
            "document"),
    "ods": (odf(["内訳"], "application/vnd.oasis.opendocument.spreadsheet"), "内訳.ods",
            OCTET, "document"),
    "epub": (odf(["手引き"], "application/epub+zip"), "手引き.epub", OCTET, "document"),
    "jar": (jar(), "tool.jar", "application/java-archive", "package"),
    "jpeg": (photo(), "現場写真.jpg", "image/jpeg", "image"),
    "png": (photo(kind="PNG"), "図面.png", "image/png", "image"),
}


@pytest.mark.parametrize("name", sorted(OFFICE_FILES))
def test_a_file_that_cannot_hold_a_notice_is_ignored_and_listed(name):
    data, filename, ctype, kind = OFFICE_FILES[name]
    result = read(mail((data, filename, ctype)))
    assert [n.origin for n in result.notices] == [NOTICE]
    assert result.problems == []
    assert [(i.origin, i.kind) for i in result.ignored] == [(f"attachment:{filename}", kind)]
    assert "not searched" in result.ignored[0].detail


@pytest.mark.parametrize("builder", [
    lambda: docx([TYPED_OTHER], {"word/embeddings/notice.pdf": (render_notice_pdf(OTHER),
                                                                "application/pdf")}),
    lambda: xlsx([["保証契約番号", "35075-00002M"], ["認証キー", "Qw2Er4Ty6Ui0"]],
                 extra_parts={"xl/embeddings/notice.pdf": (render_notice_pdf(OTHER),
                                                           "application/pdf")}),
], ids=["docx", "xlsx"])
def test_nothing_inside_an_office_document_is_read(builder):
    """Not even a notice PDF packed into it as a part: an office document is no archive."""
    result = read(mail((builder(), "資料.docx", DOCX), notice=False))
    assert result.notices == []
    assert [p.code for p in result.problems] == ["no_notice_found"]
    assert [i.origin for i in result.ignored] == ["attachment:資料.docx"]


DAMAGED = {
    "xlsx named .xlsx": (truncated(xlsx()), "工事費内訳書.xlsx", XLSX),
    "xlsx named .zip": (truncated(xlsx()), "書類.zip", "application/zip"),  # local headers
    "odt without extension": (truncated(odf(["送付状"])), "送付状", OCTET),
    "docx cut in its first header": (docx(["送付状"])[:20], "送付状.docx", DOCX),  # by name
    "xlsx cut in half": (truncated(xlsx(), 0.5), "内訳.xlsx", XLSX),
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_office_document_is_no_problem(name):
    data, filename, ctype = DAMAGED[name]
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(data))
    result = read(mail((data, filename, ctype)))
    assert [n.origin for n in result.notices] == [NOTICE]
    assert result.problems == []
    assert [i.origin for i in result.ignored] == [f"attachment:{filename}"]
    assert "damaged" in result.ignored[0].detail


def test_a_damaged_archive_that_can_hold_a_notice_is_still_a_problem():
    archive = person_zip([("認証キーのお知らせ.pdf", render_notice_pdf(OTHER))])
    cases = [
        truncated(archive),  # a person's zip of a notice
        docx(["送付状"])[:20],  # the start of a zip, named .zip: nothing says office
        # A stored zip holding a stored spreadsheet, cut inside the PDF after it: the walk of
        # the local headers skips the spreadsheet's bytes, so its members are not the zip's.
        truncated(person_zip([("内訳書.xlsx", xlsx()), ("お知らせ.pdf", PDF)],
                             zipfile.ZIP_STORED), 0.95),
    ]
    for data in cases:
        result = read(mail((data, "書類.zip", "application/zip")))
        assert [(p.code, p.origin) for p in result.problems] == [
            ("unreadable_attachment", "attachment:書類.zip")]


def test_an_office_document_inside_a_zip_is_ignored_and_the_notice_read():
    archive = person_zip([("内訳書.xlsx", xlsx()), ("お知らせ.pdf", render_notice_pdf(OTHER))],
                         zipfile.ZIP_STORED)
    result = read(mail((archive, "書類.zip", "application/zip"), notice=False))
    assert [n.guarantee_number for n in result.notices] == ["35075-00002M"]
    assert result.problems == []
    assert [(i.origin, i.kind) for i in result.ignored] == [
        ("attachment:書類.zip/内訳書.xlsx", "document")]


def test_files_are_judged_by_content_not_by_name():
    renamed_pdf = read(mail((render_notice_pdf(OTHER), "内訳書.xlsx", XLSX), notice=False))
    assert [n.guarantee_number for n in renamed_pdf.notices] == ["35075-00002M"]
    zip_named_xlsx = person_zip([("お知らせ.pdf", render_notice_pdf(OTHER))])
    result = read(mail((zip_named_xlsx, "内訳書.xlsx", XLSX), notice=False))
    assert [n.origin for n in result.notices] == ["attachment:内訳書.xlsx/お知らせ.pdf#page=1"]
    xlsx_named_zip = read(mail((xlsx(), "書類.zip", "application/zip")))
    assert xlsx_named_zip.problems == [] and len(xlsx_named_zip.ignored) == 1


def test_a_locked_zip_that_holds_no_notice_is_no_problem():
    locked = encrypted_zip([("内訳書.xlsx", xlsx()), ("写真.jpg", photo())], "x7Gq2LpR")
    result = read(mail((locked, "書類.zip", "application/zip")))
    assert result.problems == []
    assert [(i.origin, i.kind) for i in result.ignored] == [("attachment:書類.zip", "archive")]
    assert "password" in result.ignored[0].detail
    with_a_pdf = encrypted_zip([("内訳書.xlsx", xlsx()), ("お知らせ.pdf", PDF)], "x7Gq2LpR")
    result = read(mail((with_a_pdf, "書類.zip", "application/zip")))
    assert [p.code for p in result.problems] == ["encrypted_archive"]


def test_size_limits_cost_nothing_for_files_that_cannot_hold_a_notice():
    big = photo(400)
    limits = Limits(max_attachment_bytes=len(PDF) + 1000, max_archive_members=3)
    assert len(big) > limits.max_attachment_bytes
    photos = person_zip([(f"写真{i}.jpg", photo(16 + i)) for i in range(5)])
    result = read(mail((big, "現場写真.jpg", "image/jpeg"), (photos, "写真.zip", "application/zip")),
                  limits)
    assert [n.origin for n in result.notices] == [NOTICE]
    assert result.problems == []
    assert [i.origin for i in result.ignored] == ["attachment:現場写真.jpg",
                                                  "attachment:写真.zip"]
    too_big = read(mail(), replace(limits, max_attachment_bytes=len(PDF) - 1))
    assert [(p.code, p.origin) for p in too_big.problems] == [
        ("attachment_too_large", "attachment:認証キーのお知らせ.pdf")]


def test_a_zip_member_that_cannot_be_extracted_is_judged_by_its_name():
    def damaged(member: str) -> bytes:
        data = bytearray(person_zip([(member, b"\xff\xd8\xff\xe0" + b"site photo " * 800),
                                     ("お知らせ.pdf", PDF)]))
        info = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
        start = info.header_offset + 30 + len(info.filename.encode())
        data[start + 20:start + 40] = b"\x00" * 20  # inside the deflated stream
        return bytes(data)

    photo_result = read(mail((damaged("写真.jpg"), "書類.zip", "application/zip"), notice=False))
    assert [n.guarantee_number for n in photo_result.notices] == ["35075-00001M"]
    assert photo_result.problems == []
    assert [i.origin for i in photo_result.ignored] == ["attachment:書類.zip/写真.jpg"]
    unknown = read(mail((damaged("data.bin"), "書類.zip", "application/zip"), notice=False))
    assert [(p.code, p.origin) for p in unknown.problems] == [
        ("unreadable_attachment", "attachment:書類.zip/data.bin")]


@pytest.mark.parametrize(("data", "name", "kind", "label"), [
    (xlsx(), "a.xlsx", "document", "Excel workbook (OOXML)"),
    (docx(["x"]), "a", "document", "Word document (OOXML)"),
    (odf(["x"]), "a.zip", "document", "ODF document (application/vnd.oasis.opendocument.text)"),
    (truncated(xlsx()), "", "document", "Excel workbook (OOXML), damaged"),
    (jar(), "a.zip", "package", "Java / Android package (META-INF/MANIFEST.MF)"),
    (person_zip([("a.pdf", b"%PDF-1.7")]), "a.xlsx", "archive", "zip archive"),
    (b"%PDF-1.7\n", "a.xlsx", "pdf", "PDF"),
    (b"junk", "a.pdf", "pdf", "named .pdf but not a PDF"),
    (photo(), "a.pdf", "pdf", "named .pdf but not a PDF"),  # what the sender calls the notice
    (photo(), "", "image", "JPEG image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "内訳.xls", "document",
     "OLE2 compound file (.doc/.xls/.msg, or a password-protected Office file), named .xls"),
    (b"\x00\x00\x00\x18ftypheic" + bytes(16), "IMG_0001.HEIC", "image", "HEIC image"),
    (b"hello", "memo.bin", "other", "neither a PDF nor a zip (application/octet-stream), "
                                    "named .bin"),
])
def test_sniff(data, name, kind, label):
    found = sniff(name, data)
    assert (found.kind, found.label) == (kind, label)


def test_parse_json_keeps_to_the_contract_for_office_mails(tmp_path):
    path = tmp_path / "office.eml"
    path.write_bytes(mail((xlsx(), "工事費内訳書.xlsx", XLSX),
                          (truncated(xlsx()), "見積書.xlsx", XLSX)))
    run = subprocess.run([sys.executable, "-m", "mailbot.cli", "parse", "--json", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    (line,) = run.stdout.splitlines()
    got = json.loads(line)
    assert sorted(got) == ["notices", "problems", "source"]
    assert [(n["guarantee_number"], n["origin"]) for n in got["notices"]] == [
        ("35075-00001M", NOTICE)]
    assert got["problems"] == []


# -- the decision -------------------------------------------------------------------------

def registered(store) -> None:
    store.apply([GuaranteeEvent(
        FIELDS.guarantee_number, "new", FIELDS.auth_key, kind=FIELDS.kind, issuer="〇〇市",
        contractor=FIELDS.contractor, project_name=FIELDS.project_name, source="t")])


def run_decide(store, store_url, tmp_path, raw):
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(store_url, tmp_path / "spool"), encoding="utf-8")
    config = load_config(path)
    mailbox = config.mailbox("keiyaku")
    return decide(raw, mail_facts(raw, mailbox.name), mailbox, config, store, Reader(),
                  datetime.now(UTC))


def test_the_decision_confirms_and_records_the_ignored_files(store, store_url, tmp_path):
    registered(store)
    raw = mail((xlsx(), "工事費内訳書.xlsx", XLSX), (truncated(xlsx()), "見積書.xlsx", XLSX))
    result = run_decide(store, store_url, tmp_path, raw)
    assert result.status == "verified" and result.outcomes == ["verified"]
    assert result.reply.template == "confirmation"
    assert result.reply.context["problems"] == []
    record = result.record
    assert record["problems"] == []
    assert [(i["origin"], i["kind"]) for i in record["ignored"]] == [
        ("attachment:工事費内訳書.xlsx", "document"), ("attachment:見積書.xlsx", "document")]
    assert "damaged" in record["ignored"][1]["detail"]
    assert FIELDS.auth_key not in json.dumps(record, ensure_ascii=False)


def test_a_problem_with_what_can_hold_a_notice_still_asks(store, store_url, tmp_path):
    registered(store)
    archive = truncated(person_zip([("お知らせ.pdf", render_notice_pdf(OTHER))]))
    result = run_decide(store, store_url, tmp_path,
                        mail((archive, "書類.zip", "application/zip"), (xlsx(), "内訳.xlsx", XLSX)))
    assert result.status == "discrepancy" and result.reply.template == "discrepancy"
    assert result.reply.context["problems"] == [
        {"code": "unreadable_attachment", "origin": "attachment:書類.zip"}]
    assert [i["origin"] for i in result.record["ignored"]] == ["attachment:内訳.xlsx"]


# -- end to end: Dovecot → daemon → relay -------------------------------------------------

def test_an_xlsx_beside_a_good_notice_gets_one_clean_confirmation(dovecot, sink, tmp_path,
                                                                  monkeypatch):
    events = [GuaranteeEvent(FIELDS.guarantee_number, "new", FIELDS.auth_key, kind=FIELDS.kind,
                             issuer="〇〇市", contractor=FIELDS.contractor,
                             project_name=FIELDS.project_name, source="t")]
    raw = mail((xlsx(), "工事費内訳書.xlsx", XLSX), (truncated(xlsx()), "見積書.xlsx", XLSX))
    message_id = str(mail_facts(raw, "keiyaku").message_id)
    with issuer_daemon(dovecot, sink, tmp_path, monkeypatch, events) as (_config, store, _d):
        dovecot.deliver(USER, raw)
        wait_for(lambda: settled(store, 1), 120, "the mail decided, filed and answered")
        replies = accepted(sink)
        record = decision(store, message_id)
    assert len(replies) == 1
    reply = replies[0]
    assert str(reply["In-Reply-To"]).strip() == message_id
    assert str(reply["X-Mailbot-Result"]).startswith("verified")
    text = reply.get_content()
    assert "受領および確認が完了しました" in text and "35075-00001M" in text
    for asking in ("確認できない点", "改めて", "再送", "添付ファイル「"):
        assert asking not in text
    assert record["status"] == "verified" and record["problems"] == []
    assert [i["origin"] for i in record["ignored"]] == ["attachment:工事費内訳書.xlsx",
                                                        "attachment:見積書.xlsx"]


def test_the_contractor_side_submits_and_tells_the_staff_nothing(store, store_url, tmp_path,
                                                                 sink):
    """A surety's mail with the notice PDF and a damaged spreadsheet: the notice is
    submitted, the staff get no 'cannot read' alert, the record lists the spreadsheet."""
    _config, store, feed = make_side(store, store_url, tmp_path, sink)
    raw = submission_mail("35075-00001M", "〇〇浄水場△△修繕工事")
    message = message_from_bytes(raw, policy=policy.default)
    message.add_attachment(truncated(xlsx()), maintype="application", subtype="octet-stream",
                           filename="内訳書.xlsx")
    record = feed(message.as_bytes())
    assert record["status"] == "submitted" and record["problems"] == []
    assert [i["origin"] for i in record["ignored"]] == ["attachment:内訳書.xlsx"]
    assert [r.kind for r in select_all(store, outbox)] == ["submission"]

"""Office documents as contractors attach them beside a notice: .xlsx, .docx, .odt, damaged.

Each is a real zip container written with ``zipfile`` in the structure its standard asks
for: an OOXML package (ECMA-376: ``[Content_Types].xml``, ``_rels/.rels``, the main part and
its relationships) or an ODF package (``mimetype`` first and stored, then ``content.xml``
and ``META-INF/manifest.xml``). They open in Excel, Word and LibreOffice. ``truncated`` cuts
a file the way an interrupted download or a mail client's size limit does: the central
directory at the end is lost, the local headers at the start remain. Deterministic: fixed
timestamps, members always in the same order.
"""

from __future__ import annotations

import io
import struct
import zipfile
from xml.sax.saxutils import escape

_WHEN = (2026, 4, 1, 9, 0, 0)
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CT = "http://schemas.openxmlformats.org/package/2006/content-types"
_PR = "http://schemas.openxmlformats.org/package/2006/relationships"
_OR = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_SML = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_WML = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_OFFICE = "application/vnd.openxmlformats-officedocument"

#: What a 工事費内訳書 spreadsheet says (rows of cells).
BREAKDOWN = [["工種", "数量", "金額（円）"], ["土工", "1式", "1200000"],
             ["管布設工", "120m", "8400000"], ["合計", "", "9600000"]]


def _zip(members: list[tuple[str, bytes | str, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, method in members:
            info = zipfile.ZipInfo(name, date_time=_WHEN)
            info.compress_type = method
            archive.writestr(info, data)
    return buffer.getvalue()


def _deflated(name: str, data: bytes | str) -> tuple[str, bytes | str, int]:
    return name, data, zipfile.ZIP_DEFLATED


def _content_types(overrides: dict[str, str], defaults: dict[str, str] | None = None) -> str:
    entries = {"rels": "application/vnd.openxmlformats-package.relationships+xml",
               "xml": "application/xml", **(defaults or {})}
    return (_XML + f'<Types xmlns="{_CT}">'
            + "".join(f'<Default Extension="{e}" ContentType="{t}"/>' for e, t in entries.items())
            + "".join(f'<Override PartName="{p}" ContentType="{t}"/>'
                      for p, t in overrides.items())
            + "</Types>")


def _rels(*targets: tuple[str, str]) -> str:
    return (_XML + f'<Relationships xmlns="{_PR}">'
            + "".join(f'<Relationship Id="rId{i}" Type="{_OR}/{kind}" Target="{target}"/>'
                      for i, (kind, target) in enumerate(targets, 1))
            + "</Relationships>")


def _cell(column: int, row: int, value: str) -> str:
    ref = f"{chr(ord('A') + column)}{row}"
    if value.isdigit():
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'


def xlsx(rows: list[list[str]] = BREAKDOWN, sheet: str = "内訳書",
         extra_parts: dict[str, tuple[bytes, str]] | None = None) -> bytes:
    """A SpreadsheetML workbook of one sheet with `rows` (inline strings, digits as numbers).

    `extra_parts`: more package parts (name → (bytes, content type)), e.g. an embedded PDF,
    to show that nothing inside an office document is read."""
    extra = extra_parts or {}
    sheet_xml = (_XML + f'<worksheet xmlns="{_SML}"><sheetData>'
                 + "".join(f'<row r="{r}">' + "".join(_cell(c, r, v) for c, v in enumerate(cells))
                           + "</row>" for r, cells in enumerate(rows, 1))
                 + "</sheetData></worksheet>")
    workbook = (_XML + f'<workbook xmlns="{_SML}" xmlns:r="{_OR}"><sheets>'
                f'<sheet name="{escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>')
    overrides = {"/xl/workbook.xml": "application/vnd.openxmlformats-officedocument."
                                     "spreadsheetml.sheet.main+xml",
                 "/xl/worksheets/sheet1.xml": f"{_OFFICE}.spreadsheetml.worksheet+xml",
                 **{f"/{name}": ctype for name, (_data, ctype) in extra.items()}}
    return _zip([
        _deflated("[Content_Types].xml", _content_types(overrides)),
        _deflated("_rels/.rels", _rels(("officeDocument", "xl/workbook.xml"))),
        _deflated("xl/workbook.xml", workbook),
        _deflated("xl/_rels/workbook.xml.rels", _rels(("worksheet", "worksheets/sheet1.xml"))),
        _deflated("xl/worksheets/sheet1.xml", sheet_xml),
        *(_deflated(name, data) for name, (data, _ctype) in extra.items()),
    ])


def docx(paragraphs: list[str], extra_parts: dict[str, tuple[bytes, str]] | None = None
         ) -> bytes:
    """A WordprocessingML document of `paragraphs` (see `xlsx` for `extra_parts`)."""
    extra = extra_parts or {}
    body = "".join(f"<w:p><w:r><w:t>{escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
    document = _XML + f'<w:document xmlns:w="{_WML}"><w:body>{body}</w:body></w:document>'
    overrides = {"/word/document.xml": f"{_OFFICE}.wordprocessingml.document.main+xml",
                 **{f"/{name}": ctype for name, (_data, ctype) in extra.items()}}
    return _zip([
        _deflated("[Content_Types].xml", _content_types(overrides)),
        _deflated("_rels/.rels", _rels(("officeDocument", "word/document.xml"))),
        _deflated("word/document.xml", document),
        *(_deflated(name, data) for name, (data, _ctype) in extra.items()),
    ])


def odf(paragraphs: list[str], media_type: str = "application/vnd.oasis.opendocument.text"
        ) -> bytes:
    """An OpenDocument package (.odt by default): `mimetype` first and stored, as ODF 1.3
    Part 2 §3.3 requires, then the content and the manifest."""
    office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    text = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    manifest_ns = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
    content = (_XML.replace(' standalone="yes"', "")
               + f'<office:document-content xmlns:office="{office}" xmlns:text="{text}" '
               'office:version="1.3"><office:body><office:text>'
               + "".join(f"<text:p>{escape(p)}</text:p>" for p in paragraphs)
               + "</office:text></office:body></office:document-content>")
    manifest = (_XML.replace(' standalone="yes"', "")
                + f'<manifest:manifest xmlns:manifest="{manifest_ns}" manifest:version="1.3">'
                f'<manifest:file-entry manifest:full-path="/" manifest:version="1.3" '
                f'manifest:media-type="{media_type}"/>'
                '<manifest:file-entry manifest:full-path="content.xml" '
                'manifest:media-type="text/xml"/></manifest:manifest>')
    return _zip([
        ("mimetype", media_type, zipfile.ZIP_STORED),
        _deflated("content.xml", content),
        _deflated("META-INF/manifest.xml", manifest),
    ])


def truncated(data: bytes, fraction: float = 0.9) -> bytes:
    """The first `fraction` of a zip container's members: its central directory is lost,
    the local headers before the cut remain."""
    end = data.rfind(b"PK\x05\x06")
    if end < 0:
        raise ValueError("not a zip file (no end of central directory record)")
    (directory,) = struct.unpack_from("<I", data, end + 16)
    return data[: int(directory * fraction)]

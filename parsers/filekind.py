"""What an attachment is, by its content first and its name second, and whether it can
hold a notice.

A notice reaches us as a PDF, as a PDF inside a zip archive (a zip in a zip, a mail in a
zip), inside a forwarded mail, or typed as text. `mime` unfolds the mails and the texts;
this module tells the reader which of the remaining files to open. Everything else cannot
hold a notice and is only recorded (`parsers.model.Ignored`): images (the reader does no
OCR), office documents, program packages and any other file. Such a file never asks the
sender for anything, whether it is damaged, too large or locked.

Many document formats are zip containers and start with ``PK\\x03\\x04`` like an archive a
person packed. They are told apart by what they hold, not by their name:

- OOXML / OPC packages (.docx, .xlsx, .pptx, .vsdx, .xps …): a ``[Content_Types].xml``
  member at the root (ECMA-376 Part 2).
- ODF (.odt, .ods, .odp …), EPUB and the other OCF-style formats: a first member named
  ``mimetype``, stored, whose content is the document's media type
  (``application/vnd.oasis.opendocument.text``, ``application/epub+zip`` …). Any media type
  counts: nobody's hand-made zip starts with a member of that name holding a media type.
- Java and Android packages (.jar, .war, .apk …): a ``META-INF/MANIFEST.MF`` member. They
  are programs, not paperwork; nobody packs a notice into one.

An intact zip is judged by its own central directory (`open_zip`), so a spreadsheet stored
inside a person's zip does not make the zip a spreadsheet. A damaged zip (truncated, its central directory
lost) is judged by the local file headers walked from the start of the file, each one
skipped by the size it declares, then by its file name's extension; a damaged zip that is
none of these stays an archive, and its damage a problem the sender hears about.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, replace

PDF, ARCHIVE, DOCUMENT, PACKAGE, IMAGE, OTHER = (
    "pdf", "archive", "document", "package", "image", "other")
#: The kinds the reader opens: a notice can be in them.
NOTICE_KINDS = frozenset({PDF, ARCHIVE})


@dataclass(frozen=True)
class FileKind:
    kind: str  # one of PDF, ARCHIVE, DOCUMENT, PACKAGE, IMAGE, OTHER
    label: str  # what it is, in a few words, for the audit trail
    damaged: bool = False

    @property
    def holds_notices(self) -> bool:
        return self.kind in NOTICE_KINDS


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
)
_ISO_BRANDS = {b"heic": "HEIC image", b"heix": "HEIC image", b"mif1": "HEIF image",
               b"avif": "AVIF image"}
_BY_EXTENSION: dict[str, tuple[str, str]] = {
    **{e: (DOCUMENT, f"office document (.{e})") for e in (
        "docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "xlsb", "pptx", "pptm",
        "potx", "ppsx", "ppsm", "vsdx", "xps", "oxps", "odt", "ods", "odp", "odg", "odf", "ott",
        "ots", "otp", "epub", "doc", "xls", "ppt", "rtf", "jtd", "jtdc", "msg")},
    **{e: (PACKAGE, f"program package (.{e})") for e in ("jar", "war", "ear", "apk", "aar")},
    **{e: (IMAGE, f"image (.{e})") for e in (
        "jpg", "jpeg", "jpe", "png", "gif", "bmp", "tif", "tiff", "heic", "heif", "webp",
        "avif", "svg", "ico", "emf", "wmf")},
}
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*", re.IGNORECASE)
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # APPNOTE 4.3.7, 30 bytes
_FLAG_DATA_DESCRIPTOR, _FLAG_UTF8 = 0x8, 0x800
_MAX_LOCAL_HEADERS = 1000


def extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1].lower()
    return base.rsplit(".", 1)[-1] if "." in base else ""


def kind_by_name(name: str) -> FileKind | None:
    """What a file name says a file is, or None when it says nothing we know."""
    ext = extension(name)
    if ext == "pdf":
        return FileKind(PDF, "PDF (by its name)")
    if ext == "zip":
        return FileKind(ARCHIVE, "zip archive (by its name)")
    if ext in _BY_EXTENSION:
        kind, label = _BY_EXTENSION[ext]
        return FileKind(kind, label)
    return None


def may_hold_notice(name: str) -> bool:
    """From its name alone (a locked or damaged zip member): can this file be a notice?
    Only a name that says image, office document or package answers no."""
    known = kind_by_name(name)
    return known is None or known.holds_notices


def sniff(name: str, data: bytes, content_type: str = "application/octet-stream") -> FileKind:
    """What `data` (the attachment `name`) is. Zips first: a stored zip holds "%PDF-" early."""
    if data[:4] in ZIP_MAGIC:
        return zip_kind(data, name)
    if b"%PDF-" in data[:1024]:
        return FileKind(PDF, "PDF")
    ext = extension(name)
    if ext in ("pdf", "zip"):  # what the sender calls the notice: its damage is news to them
        return FileKind(PDF if ext == "pdf" else ARCHIVE,
                        f"named .{ext} but not a {ext.upper()}", damaged=True)
    for magic, label in _IMAGE_MAGIC:
        if data.startswith(magic):
            return FileKind(IMAGE, label)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return FileKind(IMAGE, "WebP image")
    if data[4:8] == b"ftyp" and data[8:12] in _ISO_BRANDS:
        return FileKind(IMAGE, _ISO_BRANDS[data[8:12]])
    if data.startswith(_OLE2_MAGIC):
        return FileKind(DOCUMENT, "OLE2 compound file (.doc/.xls/.msg, or a password-protected "
                                  f"Office file){_named(ext)}")
    known = kind_by_name(name)
    if known is not None:
        return known
    if content_type.lower().startswith("image/"):
        return FileKind(IMAGE, f"image ({content_type})")
    return FileKind(OTHER, f"neither a PDF nor a zip ({content_type}){_named(ext)}")


def open_zip(data: bytes) -> zipfile.ZipFile:
    """The zip `data`, read through its own central directory, or `zipfile.BadZipFile`.

    `zipfile` takes the last end-of-directory record it finds; in a truncated zip that can be
    the record of a zip stored uncompressed inside it (a spreadsheet in a person's archive),
    whose members then pass for the archive's. The members of the file's own directory
    start at its first byte."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    infos = archive.infolist()
    if infos and min(i.header_offset for i in infos) != 0:
        archive.close()
        raise zipfile.BadZipFile("the central directory found belongs to a zip stored inside "
                                 "this one (the file is truncated)")
    return archive


def zip_kind(data: bytes, name: str = "") -> FileKind:
    """An archive, or a document / package that is a zip container (see the module doc)."""
    try:
        with open_zip(data) as archive:
            names: list[str] | None = archive.namelist()
    except Exception:  # BadZipFile, and whatever else a hostile central directory raises
        names = None
    local = local_members(data)
    first = local[0] if local else None
    if names is not None:
        found = _container(names, first)
        if found is not None and _complete(found, names):
            return found
        return FileKind(ARCHIVE, "zip archive")
    found = _container((n for n, _ in local), first)
    if found is not None:
        return replace(found, label=f"{found.label}, damaged", damaged=True)
    known = kind_by_name(name)
    if known is not None and not known.holds_notices:
        return replace(known, label=f"{known.label}, damaged", damaged=True)
    return FileKind(ARCHIVE, "zip archive, damaged", damaged=True)


def local_members(data: bytes) -> list[tuple[str, bytes]]:
    """(name, stored content when small) of the local file headers from the start of `data`.

    Each member is skipped by the compressed size its header declares; the walk stops at
    damage or at a member whose size only a trailing data descriptor gives (scanning on for
    the next signature could land inside a stored member, such as a spreadsheet kept in a
    person's zip, and take its members for the archive's own)."""
    out: list[tuple[str, bytes]] = []
    pos = 0
    while len(out) < _MAX_LOCAL_HEADERS and pos + _LOCAL_HEADER.size <= len(data):
        (signature, _version, flags, method, _time, _date, _crc, csize, _size, name_len,
         extra_len) = _LOCAL_HEADER.unpack_from(data, pos)
        if signature != b"PK\x03\x04":
            break
        start = pos + _LOCAL_HEADER.size
        raw_name = data[start:start + name_len]
        name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")
        body = start + name_len + extra_len
        sized = not flags & _FLAG_DATA_DESCRIPTOR and csize != 0xFFFFFFFF
        small = sized and method == 0 and csize <= 256
        out.append((name, data[body:body + csize] if small else b""))
        if not sized:
            break
        pos = body + csize
    return out


def _container(names: Iterable[str], first: tuple[str, bytes] | None) -> FileKind | None:
    lowered = {n.lower() for n in names}
    if first is not None and first[0] == "mimetype":
        media = first[1].decode("ascii", "replace").strip()
        if _MEDIA_TYPE.fullmatch(media):
            if media.startswith("application/vnd.oasis.opendocument."):
                return FileKind(DOCUMENT, f"ODF document ({media})")
            if media == "application/epub+zip":
                return FileKind(DOCUMENT, "EPUB book")
            return FileKind(DOCUMENT, f"document container ({media})")
    if "mimetype" in lowered and "meta-inf/manifest.xml" in lowered:
        return FileKind(DOCUMENT, "ODF document")
    if "[content_types].xml" in lowered:
        for prefix, label in (("word/", "Word document"), ("xl/", "Excel workbook"),
                              ("ppt/", "PowerPoint presentation")):
            if any(n.startswith(prefix) for n in lowered):
                return FileKind(DOCUMENT, f"{label} (OOXML)")
        return FileKind(DOCUMENT, "OOXML / OPC package")
    if "meta-inf/manifest.mf" in lowered:
        return FileKind(PACKAGE, "Java / Android package (META-INF/MANIFEST.MF)")
    return None


def _complete(found: FileKind, names: Iterable[str]) -> bool:
    """Does an intact zip that carries a container's marker hold the rest of that container's
    structure? A person's zip with the notice PDF and a stray ``[Content_Types].xml`` (a
    folder packed from an unpacked workbook) or a ``mimetype`` member is an archive, and its
    notice must be read, not ignored as an office document. A real OPC package has its
    package relationships (``_rels/.rels``, ECMA-376 Part 2 §9.3); an ODF / OCF document its
    ``META-INF/`` manifest; a Java / Android package its code."""
    lowered = [n.lower() for n in names]
    if found.kind == PACKAGE:
        return any(n.endswith((".class", ".dex")) or n.startswith("web-inf/")
                   or n == "androidmanifest.xml" for n in lowered)
    if "[content_types].xml" in lowered and "_rels/.rels" in lowered:
        return True
    return any(n.startswith("meta-inf/") and n != "meta-inf/" for n in lowered)


def _named(ext: str) -> str:
    return f", named .{ext}" if ext else ""

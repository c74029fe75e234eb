"""Characters and their boxes from pypdfium2: the reader's normal path (docs/reading.md).

For every character of a page's text layer PDFium gives, in three C calls, its code point,
its loose box (the advance box: origin to origin plus advance, font descent to ascent, so the
gap between two boxes is exactly the spacing the producer added — `Tc`, `Tw` or a `TJ`
shift) and its matrix (CTM × text matrix: the direction the text is written in). Characters
PDFium generated itself (its guessed spaces and line ends) and white space glyphs are left
out: where words and cells part is decided from geometry (`parsers.geometry`), never from the
producer's spaces.

A page with more glyphs than any notice has (`MAX_PAGE_GLYPHS`) is not read here: see
`pdfread`, which hands such documents to pdfminer as before.

PDFium is not thread-safe: two threads calling it at once, even on different documents,
corrupt its state and crash the process. The daemon reads mails in threads when it has no
worker pool, so every use of PDFium in a process holds `PDFIUM_LOCK` from opening a document
to closing it, and closes every object it opened (a finalizer left to the garbage collector
would call PDFium from whichever thread happens to collect).
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, field
from math import atan2, degrees

import pypdfium2
import pypdfium2.raw as pdfium_c

MAX_PAGE_GLYPHS = 20_000  # a notice page has about 600

#: Held by every caller of PDFium in this process, for as long as a document is open.
PDFIUM_LOCK = threading.RLock()

#: (text, x0, y0, x1, y1, frame): a glyph's loose box in page space and its writing frame.
Glyph = tuple[str, float, float, float, float, "Frame"]
#: (angle of the baseline in whole degrees, counter-clockwise; mirrored).
Frame = tuple[int, bool]
UPRIGHT: Frame = (0, False)


class NeedsPassword(Exception):
    """The PDF cannot be opened without a user password."""


class NotOpened(Exception):
    """PDFium could not open the document at all."""


class TooManyGlyphs(Exception):
    """A page holds more glyphs than `MAX_PAGE_GLYPHS`."""


@dataclass
class PageGlyphs:
    glyphs: list[Glyph] = field(default_factory=list)
    rotation: int = 0  # the page's /Rotate (inherited from the page tree), 0/90/180/270
    images: int = 0  # image objects, counted only on a page without glyphs
    unmapped: int = 0  # glyphs PDFium could not map to Unicode


def open_document(data: bytes) -> pypdfium2.PdfDocument:
    try:
        return pypdfium2.PdfDocument(data, password="")
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise NeedsPassword() from exc
        raise NotOpened(str(exc)) from exc


def frame_of(a: float, b: float, c: float, d: float) -> Frame:
    """The writing frame of a character matrix: baseline angle and whether it is mirrored."""
    return round(degrees(atan2(b, a))) % 360, a * d - b * c < 0


def read_page(doc: pypdfium2.PdfDocument, index: int) -> PageGlyphs:
    page = doc[index]
    try:
        textpage = page.get_textpage()
        try:
            reading = _glyphs(textpage.raw)
        finally:
            textpage.close()
        reading.rotation = page.get_rotation()
        if not reading.glyphs:
            image = pdfium_c.FPDF_PAGEOBJ_IMAGE
            reading.images = sum(1 for _ in page.get_objects(filter=(image,), max_depth=4))
        return reading
    finally:
        page.close()


_UNMAPPED = {0xFFFD, 0xFFFE, 0xFFFF}


def _glyphs(raw: object) -> PageGlyphs:
    count = pdfium_c.FPDFText_CountChars(raw)
    if count > MAX_PAGE_GLYPHS:
        raise TooManyGlyphs()
    out = PageGlyphs()
    if count <= 0:
        return out
    texts = _page_text(raw, count)
    rect = pdfium_c.FS_RECTF()
    matrix = pdfium_c.FS_MATRIX()
    loose_box = pdfium_c.FPDFText_GetLooseCharBox
    get_matrix = pdfium_c.FPDFText_GetMatrix
    generated = pdfium_c.FPDFText_IsGenerated
    frames: dict[tuple[float, float, float, float], Frame] = {}
    glyphs = out.glyphs
    unmapped = 0
    for i in range(count):
        text = texts[i]
        if text.isspace() or generated(raw, i):
            continue
        code = ord(text)
        if code in _UNMAPPED or code < 0x20:
            unmapped += 1
            continue
        loose_box(raw, i, rect)
        get_matrix(raw, i, matrix)
        a, b, c, d = matrix.a, matrix.b, matrix.c, matrix.d
        if b == 0.0 and c == 0.0 and a > 0.0 and d > 0.0:
            frame = UPRIGHT
        else:
            key = (a, b, c, d)
            frame = frames.get(key) or frames.setdefault(key, frame_of(a, b, c, d))
        glyphs.append((text, rect.left, rect.bottom, rect.right, rect.top, frame))
    out.unmapped = unmapped
    return out


def _page_text(raw: object, count: int) -> list[str]:
    """One string per character index: the page's text in one call where it maps one to one
    (no character outside the BMP), else character by character."""
    buffer = ctypes.create_string_buffer((count + 1) * 2)
    written = pdfium_c.FPDFText_GetText(
        raw, 0, count, ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ushort))
    )
    text = buffer.raw[: max(written - 1, 0) * 2].decode("utf-16-le", errors="surrogatepass")
    if len(text) == count and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return list(text)
    get = pdfium_c.FPDFText_GetUnicode
    return [chr(min(get(raw, i), 0x10FFFF)) for i in range(count)]

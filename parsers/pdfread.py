"""Read the notices out of one PDF: characters and boxes from pypdfium2, pdfminer where needed.

This runs inside a sandboxed worker (`sandbox`), so it may be killed at any moment; it takes
bytes and returns plain data. The normal path (docs/reading.md, "Which engine reads what"):
PDFium's characters with their loose boxes and writing frames (`pdfchars`), made into lines
of segments by geometry (`geometry`: orientation, letter spacing). pdfminer (pdfplumber)
reads a document when PDFium cannot open it, when a page has more glyphs than a notice
(`pdfchars.MAX_PAGE_GLYPHS`: pdfminer's bounded, timed reading is what such a page gets), when
PDFium cannot map a page's glyphs to Unicode, and when the worker died reading it with PDFium
(`engine=PDFMINER`: PDFium aborts the process on memory exhaustion, pdfminer raises
`MemoryError`, which is `attachment_too_large`).

Detection, in this order: a PDF that needs a user password (`encrypted_pdf`; an owner
password alone is no obstacle), glyphs no engine can map to Unicode (`(cid:N)` in pdfminer
and unmapped in PDFium: `unreadable_attachment`), pages with images but no text
(`no_text_layer`), and memory exhaustion (`attachment_too_large`).
"""

from __future__ import annotations

import gc
import io
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from .fields import Line, Segment, read_fields
from .geometry import page_lines
from .layouts import pick_layout
from .model import Notice, Problem
from .normalize import normalize_text
from .pdfchars import (
    PDFIUM_LOCK,
    NeedsPassword,
    NotOpened,
    PageGlyphs,
    TooManyGlyphs,
    open_document,
    read_page,
)

CID_RATIO = 0.2  # share of unmapped ("(cid:N)") glyphs above which a page's text is unusable
AUTO = "auto"  # PDFium's characters first, pdfminer where needed
PDFMINER = "pdfminer"  # pdfminer only: the retry after a worker died in PDFium


@dataclass
class PdfReading:
    notices: list[Notice] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lone_numbers: tuple[str, ...] = ()  # typed text only: see fields.PageReading


@dataclass
class _Page:
    lines: list[Line]
    chars: int
    images: int
    unmapped: int


class _Encrypted(Exception):
    pass


def read_pdf(data: bytes, origin: str, max_pages: int = 50, engine: str = AUTO) -> PdfReading:
    """All notices in the PDF `data`; `origin` names the file (`attachment:a.pdf`)."""
    if engine == AUTO:
        try:
            pages = _pdfium_pages(data, max_pages)
        except NeedsPassword:
            return PdfReading(problems=[_problem("encrypted_pdf", origin, _ENCRYPTED)])
        except MemoryError:
            pages = None
        if pages is not None and not _unmapped(pages):
            return _read_pages(pages, origin)
    return _read_with_pdfminer(data, origin, max_pages)


def _unmapped(pages: list[_Page]) -> bool:
    return any(p.unmapped > CID_RATIO * max(p.chars, 1) for p in pages)


def _read_with_pdfminer(data: bytes, origin: str, max_pages: int) -> PdfReading:
    pages: list[_Page] | None = None
    failure = ""
    try:
        pages = _plumber_pages(data, max_pages)
    except _Encrypted:
        return PdfReading(problems=[_problem("encrypted_pdf", origin, _ENCRYPTED)])
    except MemoryError:
        failure = "memory"
    except Exception as exc:  # pdfminer raises many types on broken files
        failure = type(exc).__name__
    if failure == "memory":
        # Outside the except block the traceback, and the objects it pinned, are gone.
        gc.collect()
        return PdfReading(problems=[_problem("attachment_too_large", origin, _TOO_BIG)])
    if pages is None:
        pages = _pdfium_pages_or_none(data, max_pages)
        if pages is None:
            detail = f"the PDF could not be read ({failure})"
            return PdfReading(problems=[_problem("unreadable_attachment", origin, detail)])
    if _unmapped(pages):
        fallback = _pdfium_pages_or_none(data, max_pages)
        reading = _read_pages(fallback, origin) if fallback else PdfReading()
        if reading.notices:
            return reading
        detail = "the PDF's fonts have no Unicode mapping ((cid:N) glyphs); no engine could read it"
        return PdfReading(problems=[_problem("unreadable_attachment", origin, detail)])
    return _read_pages(pages, origin)


_ENCRYPTED = "the PDF is protected by a password (ask for it without a password)"
_TOO_BIG = "reading the PDF needs more memory than the reader allows (a decompression bomb?)"


def _problem(code: str, origin: str, detail: str) -> Problem:
    return Problem(code, origin, detail)


def _read_pages(pages: list[_Page], origin: str) -> PdfReading:
    reading = PdfReading()
    image_only = [i for i, p in enumerate(pages, 1) if p.chars == 0 and p.images > 0]
    incomplete_pages = []
    for number, page in enumerate(pages, 1):
        if not page.lines:
            continue
        layout = pick_layout("\n".join(line.text for line in page.lines))
        result = read_fields(page.lines, layout, f"{origin}#page={number}")
        reading.notices.extend(result.notices)
        if result.incomplete:
            incomplete_pages.append(number)
    for number in incomplete_pages:
        reading.problems.append(
            _problem(
                "incomplete_notice",
                f"{origin}#page={number}",
                "a guarantee number or an authentication key stands without the other",
            )
        )
    if image_only and not reading.notices:
        detail = "the page is an image without a text layer (a scan); send the original PDF"
        if len(image_only) == len(pages):
            reading.problems.append(_problem("no_text_layer", origin, detail))
        else:
            for number in image_only:
                reading.problems.append(_problem("no_text_layer", f"{origin}#page={number}", detail))
    return reading


def _plumber_pages(data: bytes, max_pages: int) -> list[_Page]:
    import pdfplumber
    from pdfminer.pdfdocument import PDFPasswordIncorrect

    try:
        # No unicode_norm: normalize_text folds later, keeping ASCII look-alikes (①, Ⅸ) as they are.
        pdf = pdfplumber.open(io.BytesIO(data), password="")
    except Exception as exc:
        if _caused_by(exc, PDFPasswordIncorrect):
            raise _Encrypted() from exc
        if _caused_by(exc, MemoryError):
            raise MemoryError() from exc
        raise
    pages = []
    with pdf:
        try:
            for page in pdf.pages[:max_pages]:
                pages.append(_plumber_page(page))
                page.close()  # drop the page's cached layout objects before the next one
        except Exception as exc:
            if _caused_by(exc, MemoryError):
                raise MemoryError() from exc
            raise
    return pages


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind) or any(isinstance(a, kind) for a in seen.args):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _has_doubles(chars: list[dict[str, Any]]) -> bool:
    """Whether a producer drew characters twice on top of each other (fake bold): only then
    is pdfplumber's `dedupe_chars`, a sixth of the page's reading time, worth running."""
    seen = set()
    for c in chars:
        if c["text"].isspace():
            continue
        key = (c["text"], round(c["x0"] / 2), round(c["top"] / 2))
        if key in seen:
            return True
        seen.add(key)
    return False


def _plumber_page(page: Any) -> _Page:
    if _has_doubles(page.chars):
        page = page.dedupe_chars()
    chars = page.chars
    unmapped = sum(1 for c in chars if c["text"].startswith("(cid:"))
    lines = []
    for raw in page.extract_text_lines(strip=True, return_chars=True):
        segs = _segments(raw["chars"])
        if segs:
            lines.append(Line(tuple(segs)))
    return _Page(lines, len(chars), len(page.images), unmapped)


def _segments(chars: list[dict[str, Any]]) -> list[Segment]:
    """Split a line where the gap between glyphs is wider than about one character."""
    if not chars:
        return []
    size = median(c["size"] for c in chars) or 10.0
    groups: list[list[dict[str, Any]]] = [[chars[0]]]
    for prev, cur in zip(chars, chars[1:], strict=False):
        gap = cur["x0"] - prev["x1"]
        if gap > 1.2 * size:
            groups.append([cur])
        else:
            if gap > 0.25 * size and not prev["text"].isspace():
                groups[-1].append({"text": " ", "x0": prev["x1"], "x1": cur["x0"]})
            groups[-1].append(cur)
    segments = []
    for group in groups:
        text = normalize_text("".join(c["text"] for c in group)).strip()
        if text:
            segments.append(Segment(text, group[0]["x0"], group[-1]["x1"]))
    return segments


def _pdfium_pages(data: bytes, max_pages: int) -> list[_Page] | None:
    """Pages as lines from PDFium's characters; None where pdfminer must read the document."""
    with PDFIUM_LOCK:  # PDFium is not thread-safe (see pdfchars)
        glyph_pages = _pdfium_glyphs(data, max_pages)
    if glyph_pages is None:
        return None
    pages = []
    for page in glyph_pages:
        lines = page_lines(page.glyphs, page.rotation)
        pages.append(_Page(lines, len(page.glyphs) + page.unmapped, page.images, page.unmapped))
    return pages


def _pdfium_glyphs(data: bytes, max_pages: int) -> list[PageGlyphs] | None:
    """Every page's glyphs; the caller holds `PDFIUM_LOCK`."""
    try:
        doc = open_document(data)
    except NotOpened:
        return None
    try:
        return [read_page(doc, index) for index in range(min(len(doc), max_pages))]
    except (TooManyGlyphs, NeedsPassword):
        return None
    except MemoryError:
        raise
    except Exception:  # PDFium's errors on a broken page: pdfminer gets its chance
        return None
    finally:
        doc.close()


def _pdfium_pages_or_none(data: bytes, max_pages: int) -> list[_Page] | None:
    try:
        return _pdfium_pages(data, max_pages)
    except (NeedsPassword, MemoryError):
        return None

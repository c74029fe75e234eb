"""Read the notices out of one PDF: text by position with pdfplumber, pypdfium2 as fallback.

This runs inside a sandboxed worker (`sandbox`), so it may be killed at any moment; it takes
bytes and returns plain data. Detection, in this order: a PDF that needs a user password
(`encrypted_pdf`; an owner password alone is no obstacle), glyphs pdfminer cannot map to
Unicode (`(cid:N)`: retried with pypdfium2, else `unreadable_attachment`), pages with images
but no text (`no_text_layer`), and memory exhaustion (`attachment_too_large`).
"""

from __future__ import annotations

import gc
import io
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from .fields import Line, Segment, read_fields, text_lines
from .layouts import pick_layout
from .model import Notice, Problem
from .normalize import normalize_text

CID_RATIO = 0.2  # share of "(cid:N)" glyphs above which a page's text is unusable


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


def read_pdf(data: bytes, origin: str, max_pages: int = 50) -> PdfReading:
    """All notices in the PDF `data`; `origin` names the file (`attachment:a.pdf`)."""
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
        pages = _pdfium_pages(data, max_pages)
        if pages is None:
            detail = f"the PDF could not be read ({failure})"
            return PdfReading(problems=[_problem("unreadable_attachment", origin, detail)])
    if any(p.unmapped > CID_RATIO * max(p.chars, 1) for p in pages):
        fallback = _pdfium_pages(data, max_pages)
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
    """Plain text lines from PDFium, which maps glyphs through the embedded font's cmap."""
    import pypdfium2

    try:
        doc = pypdfium2.PdfDocument(data, password="")
    except Exception:
        return None
    pages = []
    try:
        for index in range(min(len(doc), max_pages)):
            text = doc[index].get_textpage().get_text_range()
            lines = text_lines(text.replace("\r\n", "\n").replace("\r", "\n"))
            chars = sum(len(line.text) for line in lines)
            pages.append(_Page(lines, chars, 0, text.count("\ufffd")))
    except Exception:
        return None
    finally:
        doc.close()
    return pages

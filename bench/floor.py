"""The floor the reader is measured against (issue 15, bench): touching every glyph once.

Standard-library MIME parsing of each mail (`email.message_from_bytes`: the stdlib's default
`compat32` policy, its cheapest parse), every part whose payload is a PDF opened with
pypdfium2, and every character's box taken from each page's text page — nothing else: no
layout, no fields, no sandbox. No reader can do less and still see every glyph.
"""

from __future__ import annotations

import email
from pathlib import Path

import pypdfium2


def pdf_parts(data: bytes) -> list[bytes]:
    """Every PDF in a mail (any part whose decoded payload starts like one), or the PDF."""
    if data.lstrip()[:5] == b"%PDF-":
        return [data]
    message = email.message_from_bytes(data)
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload[:5] == b"%PDF-":
            found.append(payload)
    return found


def touch_glyphs(pdf: bytes) -> int:
    """Open the PDF and take every character's box on every page; the pages touched."""
    try:
        doc = pypdfium2.PdfDocument(pdf)
    except pypdfium2.PdfiumError:
        return 0  # encrypted or broken: nothing to touch
    try:
        for index in range(len(doc)):
            textpage = doc[index].get_textpage()
            for char in range(textpage.count_chars()):
                textpage.get_charbox(char)
            textpage.close()
        return len(doc)
    finally:
        doc.close()


def floor_read(path: str | Path) -> int:
    """The floor's work for one mail; the PDF pages it touched."""
    return sum(touch_glyphs(pdf) for pdf in pdf_parts(Path(path).read_bytes()))

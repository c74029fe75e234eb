"""The naive baseline the reader is measured against (issue 2, bench).

What a quick script would do: stdlib parsing, every attachment that says it is a PDF through
pdfplumber's `extract_text`, and one regex per field over the flattened text and the body.
It has no sandbox, no archive handling, no charset fallbacks and no layout knowledge.
"""

from __future__ import annotations

import io
import re
from email import policy
from email.parser import BytesParser

import pdfplumber

NUMBER_RE = re.compile(r"保証契約番号\s*[:：]?\s*([0-9０-９]+[-－−][0-9０-９]+[A-ZＡ-Ｚ]?)")
KEY_RE = re.compile(r"認\s*証\s*キ\s*ー\s*[:：]?\s*([A-Za-z0-9]+)")


def _pairs(text: str) -> list[tuple[str, str]]:
    numbers = NUMBER_RE.findall(text)
    keys = KEY_RE.findall(text)
    return list(zip(numbers, keys, strict=False))


def naive_read(data: bytes) -> list[tuple[str, str]]:
    """(number, key) pairs as the naive script would report them."""
    if data.startswith(b"%PDF"):
        return _pdf_pairs(data)
    message = BytesParser(policy=policy.default).parsebytes(data)
    pairs: list[tuple[str, str]] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        name = part.get_filename() or ""
        if part.get_content_type() == "application/pdf" or name.lower().endswith(".pdf"):
            payload = part.get_payload(decode=True) or b""
            try:
                pairs += _pdf_pairs(payload)
            except Exception:
                continue
        elif part.get_content_maintype() == "text" and not name:
            try:
                pairs += _pairs(part.get_content())
            except Exception:
                continue
    return pairs


def _pdf_pairs(data: bytes) -> list[tuple[str, str]]:
    pairs = []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            pairs += _pairs(page.extract_text() or "")
    return pairs

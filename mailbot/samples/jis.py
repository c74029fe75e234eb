"""Japanese mail encodings as Japanese mailers write them, including their habits.

Python's ``iso2022_jp`` codec refuses the cp932 extension characters (NEC row 13: ①, ㈱)
that Windows mailers happily put into ISO-2022-JP mail. :func:`encode_iso2022jp_cp932`
writes them anyway, by encoding with cp932 and converting each Shift_JIS double-byte pair
to its JIS X 0208 row/cell (NEC row 13 lands on row 13). Also RFC 2047 encoded words and
RFC 2231 parameter values in those charsets. Independent of the reader in ``parsers/``.
"""

from __future__ import annotations

import base64
import urllib.parse

ESC_KANJI = b"\x1b$B"
ESC_ASCII = b"\x1b(B"


def sjis_pair_to_jis(lead: int, trail: int) -> tuple[int, int]:
    """One Shift_JIS/cp932 double-byte pair to its JIS row/cell bytes (0x21..0x7E each)."""
    if not (0x81 <= lead <= 0x9F or 0xE0 <= lead <= 0xEF):
        raise ValueError(f"lead byte {lead:#x} has no JIS X 0208 row (IBM/user-defined area)")
    row = ((lead - (0x70 if lead <= 0x9F else 0xB0)) << 1) & 0xFF
    if trail < 0x9F:
        row -= 1
        cell = trail - (0x1F if trail < 0x7F else 0x20)
    else:
        cell = trail - 0x7E
    if not (0x21 <= row <= 0x7E and 0x21 <= cell <= 0x7E):
        raise ValueError(f"bad Shift_JIS pair {lead:#x} {trail:#x}")
    return row, cell


def encode_iso2022jp_cp932(text: str) -> bytes:
    """Encode ``text`` as ISO-2022-JP the way Windows mailers do, cp932 extensions included.

    Runs of double-byte characters are wrapped in ESC $ B … ESC ( B; the result always ends
    in ASCII mode. Half-width katakana are not allowed in ISO-2022-JP and raise ValueError.
    """
    raw = text.encode("cp932")
    out = bytearray()
    kanji = False
    i = 0
    while i < len(raw):
        b = raw[i]
        if b < 0x80:
            if kanji:
                out += ESC_ASCII
                kanji = False
            out.append(b)
            i += 1
        elif 0xA1 <= b <= 0xDF:
            raise ValueError("half-width katakana cannot be written in ISO-2022-JP")
        else:
            if not kanji:
                out += ESC_KANJI
                kanji = True
            out += bytes(sjis_pair_to_jis(b, raw[i + 1]))
            i += 2
    if kanji:
        out += ESC_ASCII
    return bytes(out)


def encode_body(text: str, charset: str) -> bytes:
    """Mail body bytes in ``charset`` with CRLF line ends (cp932 extensions allowed for JIS)."""
    text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    cs = charset.lower()
    if cs == "iso-2022-jp":
        return encode_iso2022jp_cp932(text)
    if cs in ("shift_jis", "shift-jis", "sjis", "cp932", "windows-31j"):
        return text.encode("cp932")
    return text.encode(cs)


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def encoded_words(
    text: str, charset: str = "ISO-2022-JP", *, chars_per_word: int = 10
) -> list[str]:
    """RFC 2047 B encoded words, each one self-contained (JIS words end in ASCII mode)."""
    words = []
    for piece in _chunks(text, chars_per_word):
        if charset.upper() == "ISO-2022-JP":
            data = encode_iso2022jp_cp932(piece)
        else:
            data = piece.encode(charset)
        words.append(f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?=")
    return words


def rfc2047(text: str, charset: str = "ISO-2022-JP", *, chars_per_word: int = 10) -> str:
    """A header value of encoded words folded one per line (CRLF + space)."""
    return "\r\n ".join(encoded_words(text, charset, chars_per_word=chars_per_word))


def rfc2231_value(text: str, charset: str) -> str:
    """``charset''percent-encoded`` as in ``filename*=``; ISO-2022-JP keeps its escapes."""
    if charset.upper() == "ISO-2022-JP":
        data = encode_iso2022jp_cp932(text)
    else:
        data = text.encode(charset)
    return f"{charset}''" + urllib.parse.quote(data, safe="")

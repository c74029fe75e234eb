"""Decode Japanese mail text whatever its label says (docs/reading.md).

Mail labelled ISO-2022-JP or Shift_JIS is usually written by Windows software and carries
cp932 extensions (NEC specials such as ① and ㈱, IBM extensions) that Python's strict
codecs refuse. We map each label to the superset codec that real senders use, convert
ISO-2022-JP through JIS X 0208 → Shift_JIS → cp932, and when the label is wrong or missing we
try the usual Japanese encodings strictly before falling back to a lossy decode, which is
reported so the audit trail shows it.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# Label → the codec real senders mean by it.
_SUPERSETS = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "cp932": "cp932",
    "euc-jp": "euc-jp",
    "x-euc-jp": "euc-jp",
    "iso-2022-jp": "iso-2022-jp",
    "csiso2022jp": "iso-2022-jp",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}

# Tried in order when the label is missing, unknown or wrong.
_GUESSES = ("utf-8", "iso-2022-jp", "cp932", "euc-jp")

_ESC_RE = re.compile(rb"\x1b(\$@|\$B|\$\(D|\$\(Q|\$\(O|\(B|\(J|\(I)")


@dataclass(frozen=True)
class Decoded:
    """Text plus how it was obtained; `lossy` means some bytes were replaced."""

    text: str
    charset: str
    lossy: bool = False


def _jis_to_cp932(data: bytes) -> str:
    """ISO-2022-JP (with cp932 extensions in JIS X 0208 rows 13 and 89–92) → text, strictly."""
    out = bytearray()
    mode = b"(B"
    pos = 0
    for match in _ESC_RE.finditer(data):
        out += _convert_run(data[pos : match.start()], mode)
        mode = match.group(1)
        pos = match.end()
    out += _convert_run(data[pos:], mode)
    return out.decode("cp932")


def _convert_run(run: bytes, mode: bytes) -> bytes:
    if mode in (b"(B", b"(J"):
        if any(b > 0x7F for b in run):
            raise UnicodeDecodeError("iso-2022-jp", run, 0, len(run), "8-bit byte in ASCII run")
        return run
    if mode == b"(I":  # JIS X 0201 katakana: 0x21–0x5F → 0xA1–0xDF in Shift_JIS
        return bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in run)
    if mode not in (b"$@", b"$B"):
        raise UnicodeDecodeError("iso-2022-jp", run, 0, len(run), "JIS X 0212/0213 not supported")
    out = bytearray()
    body = run.replace(b"\r", b"").replace(b"\n", b"")
    if len(body) % 2:
        raise UnicodeDecodeError("iso-2022-jp", run, 0, len(run), "odd byte count in JIS run")
    for i in range(0, len(body), 2):
        j1, j2 = body[i], body[i + 1]
        if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
            raise UnicodeDecodeError("iso-2022-jp", run, i, i + 2, "byte outside JIS range")
        s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
        s2 = j2 + (0x1F if j1 % 2 else 0x7E)
        if j1 % 2 and s2 >= 0x7F:
            s2 += 1
        out += bytes((s1, s2))
    return bytes(out)


def _strict(data: bytes, codec: str) -> str:
    if codec == "iso-2022-jp":
        if b"\x1b" not in data and any(b > 0x7F for b in data):
            raise UnicodeDecodeError("iso-2022-jp", data, 0, 1, "8-bit data")
        try:
            return _jis_to_cp932(data)
        except UnicodeDecodeError:
            return data.decode("iso2022_jp_2004")  # JIS X 0213 escapes
    if codec == "euc-jp":
        try:
            return data.decode("euc-jp")
        except UnicodeDecodeError:
            return data.decode("euc_jis_2004")  # carries the NEC row-13 specials
    return data.decode(codec)


def _codec_for(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip('"').lower()
    if name in _SUPERSETS:
        return _SUPERSETS[name]
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, label: str | None = None) -> Decoded:
    """Decode `data` that claims to be in charset `label` (may be None, wrong or unknown)."""
    declared = _codec_for(label)
    tried: list[str] = []
    # A Latin label on Japanese bytes is the classic wrong label: only trust it for ASCII.
    if declared and not (declared.startswith(("iso8859", "latin", "cp125")) and _looks_cjk(data)):
        tried.append(declared)
    guesses = _GUESSES if b"\x1b$" not in data else ("iso-2022-jp", *_GUESSES)
    tried += [c for c in guesses if c not in tried]
    for codec in tried:
        try:
            return Decoded(_strict(data, codec), codec)
        except (UnicodeDecodeError, LookupError):
            continue
    fallback = declared or "cp932"
    try:
        text = data.decode(fallback if fallback != "iso-2022-jp" else "iso2022_jp", "replace")
    except LookupError:
        fallback = "cp932"
        text = data.decode(fallback, "replace")
    return Decoded(text, fallback, lossy=True)


def _looks_cjk(data: bytes) -> bool:
    return b"\x1b$" in data or sum(b > 0x7F for b in data[:4096]) > 4

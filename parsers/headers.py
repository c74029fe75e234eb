"""Header values as text a person can read, whatever the sender's software did to them.

One decoder for every header mailbot reads (Subject, From/To display names, file names):
RFC 2047 encoded words are decoded with the same Japanese charset rules as bodies
(`charset.decode_bytes`: cp932 for Shift_JIS and ISO-2022-JP labels, so NEC specials such as
① and ㈱ survive); adjacent words of one charset are joined before decoding (senders split a
multi-byte character across two words); a broken word (bad base64, unknown charset or
encoding, missing ``?=``) is decoded as far as it goes and never left as raw ``=?…?=``; raw
8-bit bytes (kept by the standard library's parser as surrogate escapes) are decoded by
guessing, like bodies. The result has no control characters (NUL, CR/LF, ESC, C1) and no
lone surrogates, and the decoder never raises.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections import deque
from dataclasses import dataclass
from email.header import Header, decode_header
from email.message import Message

from .charset import decode_bytes

# A complete encoded word; the text may hold spaces (some senders put them there).
_WORD = re.compile(r"=\?([^?\s]{1,75})\?([A-Za-z]?)\?([^?]*)\?=")
# A word cut short (no "?=", or its text ends the value): decoded as far as it goes.
_OPEN_WORD = re.compile(r"=\?([^?\s]{1,75})\?([A-Za-z]?)\?([^?\s]*)(?:\?=?)?")
_SURROGATES = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTES = re.compile("[\x00-\x7f\udc80-\udcff]*")
_ESCAPE_RUN = re.compile("[\udc80-\udcff]+")
_OTHER_SURROGATES = re.compile("[\ud800-\udc7f\udd00-\udfff]")  # not a surrogate escape
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_QP_BYTE = re.compile(rb"=([0-9A-Fa-f]{2})")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


@dataclass(frozen=True)
class HeaderText:
    """A decoded header value; `lossy` when some bytes could not be decoded exactly."""

    text: str
    lossy: bool = False


def decode_header_value(value: object) -> HeaderText:
    """`value` (a raw header string as the stdlib parsers keep it, or a `Header`) → text."""
    if value is None:
        return HeaderText("")
    try:
        raw = _raw_string(value)
        text, lossy = _decode(_FOLD.sub("", raw))
        return HeaderText(clean_header_text(text), lossy)
    except Exception:  # noqa: BLE001 — a last resort: hostile input must never stop a stage
        try:
            return HeaderText(clean_header_text(str(value)), True)
        except Exception:  # noqa: BLE001
            return HeaderText("", True)


def decode_header_text(value: object) -> str:
    """`decode_header_value(value).text`."""
    return decode_header_value(value).text


def raw_header(message: Message, name: str) -> str | None:
    """The first `name` header of `message` exactly as parsed (8-bit bytes as surrogate
    escapes, encoded words undecoded), or None. `Message.get` under compat32 turns a header
    with 8-bit bytes into a `Header` whose text has already lost them."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return value if isinstance(value, str) else str(value)
    return None


def clean_header_text(text: str) -> str:
    """One line of text: controls and line separators become spaces (NUL is dropped), lone
    surrogates become U+FFFD, white space runs fold to one space, ends are stripped."""
    text = _SURROGATES.sub("\ufffd", text.replace("\x00", ""))
    out = [(" " if _is_break(c) else c) for c in text]
    return " ".join("".join(out).split())


def clean_body_text(text: str) -> str:
    """Text for a mail body: line ends become LF, tabs stay, other controls and NUL are
    dropped, lone surrogates become U+FFFD."""
    text = _SURROGATES.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "".join(c for c in text if c in "\n\t" or not _is_break(c))


def _is_break(char: str) -> bool:
    """A character that must not stand in a header line: C0/C1 controls, DEL, separators."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char == "\ufeff"


def _raw_string(value: object) -> str:
    if isinstance(value, Header):
        # A compat32 Header from a value with 8-bit bytes: `str(value)` would replace them,
        # `decode_header` gives each chunk's bytes and charset (8-bit bytes as `unknown-8bit`).
        parts = []
        for chunk, charset in decode_header(value):
            codec = "ascii" if charset in (None, "unknown-8bit") else str(charset)
            parts.append(chunk if isinstance(chunk, str) else
                         bytes(chunk).decode(codec, "surrogateescape"))
        return "".join(parts)
    return value if isinstance(value, str) else str(value)


def _decode(raw: str) -> tuple[str, bool]:
    """Encoded words and the plain text between them, in order."""
    pieces: list[str] = []
    lossy = False
    # Adjacent words not yet decoded: (label, bytes). A deque: a header of 100,000 words
    # took 5 s with list.pop(0), and four times as long for twice as many.
    pending: deque[tuple[str, bytes]] = deque()

    def flush() -> None:
        nonlocal lossy
        while pending:
            label, data = pending.popleft()
            chunks = [data]
            while pending and pending[0][0] == label:  # one charset: join, then decode
                chunks.append(pending.popleft()[1])
            decoded = decode_bytes(b"".join(chunks), label or None)
            lossy = lossy or decoded.lossy
            pieces.append(decoded.text)

    pos = 0
    for match in _words(raw):
        between = raw[pos:match.start()]
        if between and not (pending and between.isspace()):  # RFC 2047 §6.2
            flush()
            text, was_lossy = _plain(between)
            pieces.append(text)
            lossy = lossy or was_lossy
        label, data = _word_bytes(match)
        pending.append((label, data))
        pos = match.end()
    flush()
    text, was_lossy = _plain(raw[pos:])
    pieces.append(text)
    return "".join(pieces), lossy or was_lossy


def _words(raw: str) -> list[re.Match[str]]:
    """Complete words, and words cut short where no complete one starts."""
    found: list[re.Match[str]] = []
    pos = 0
    while True:
        start = raw.find("=?", pos)
        if start < 0:
            return found
        match = _WORD.match(raw, start) or _OPEN_WORD.match(raw, start)
        if match is None:
            pos = start + 2
            continue
        found.append(match)
        pos = match.end()


def _word_bytes(match: re.Match[str]) -> tuple[str, bytes]:
    """(charset label, decoded bytes) of one encoded word; lenient about its damage."""
    label = match.group(1).split("*", 1)[0].strip().lower()  # RFC 2231 language suffix
    encoding = match.group(2).lower()
    text = match.group(3)
    data = _to_bytes(text)
    if encoding == "b":
        data = _BASE64_JUNK.sub(b"", data.split(b"=", 1)[0])
        if len(data) % 4 == 1:
            data = data[:-1]
        try:
            data = base64.b64decode(data + b"=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            pass  # keep the text itself: readable, never raw =?…?=
    elif encoding == "q":
        data = _QP_BYTE.sub(lambda m: bytes((int(m.group(1), 16),)), data.replace(b"_", b" "))
    # An unknown encoding letter: the word's text is all there is to show.
    return label, data


def _to_bytes(text: str) -> bytes:
    """The bytes a parsed header string stands for: surrogate escapes are the raw 8-bit
    bytes, anything else (a caller's own text) is UTF-8; other lone surrogates are U+FFFD."""
    return _OTHER_SURROGATES.sub("\ufffd", text).encode("utf-8", "surrogateescape")


def _plain(text: str) -> tuple[str, bool]:
    """Text outside encoded words: raw 8-bit bytes (surrogate escapes) and raw ISO-2022-JP
    escapes decoded by guessing, like a body without a charset label."""
    if text.isascii() and "\x1b" not in text:
        return text, False
    if not _SURROGATES.search(text) and "\x1b" not in text:
        return text, False  # already text (a caller's own string)
    if _ESCAPED_BYTES.fullmatch(text):  # as the stdlib's parsers give raw header bytes
        decoded = decode_bytes(_to_bytes(text), None)
        return decoded.text, decoded.lossy
    lossy = False

    def run(match: re.Match[str]) -> str:  # a caller's text with some bytes in it
        nonlocal lossy
        decoded = decode_bytes(_to_bytes(match.group()), None)
        lossy = lossy or decoded.lossy
        return decoded.text

    return _ESCAPE_RUN.sub(run, _OTHER_SURROGATES.sub("\ufffd", text)), lossy

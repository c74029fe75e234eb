"""Values from a mail made safe to render and to serialise: nothing a sender writes can make
a reply, a staff mail or a submission fail to render, or inject a header.

`safe_context()` cleans every string of a template context (no lone surrogates, no NUL or
other control characters; line ends become LF). The header setters write header values
the generator passes through unchanged: printable ASCII that fits a line as is, anything else
as RFC 2047 UTF-8 encoded words folded at 78 characters (`email.header.Header`, which
round-trips every string; the newer folder loses spaces between words and re-decodes any
``=?…?=`` a value contains). Addresses are checked, never rewritten: a recipient that is not
what `mailbot.addresses.reply_address` accepts (and gives back unchanged) is refused with
ValueError; that is the one rule for who may be written to, at decision and at rendering.
"""

from __future__ import annotations

import re
from email.header import Header
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

from mailbot.addresses import Unanswerable, is_own_address, reply_address
from parsers.headers import clean_body_text, clean_header_text

MAX_LINE = 78
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def safe_context(value: Any) -> Any:
    """`value` with every string (keys too) cleaned for a mail body; other values as given."""
    if isinstance(value, str):
        return clean_body_text(value)
    if isinstance(value, dict):
        return {safe_context(k): safe_context(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_context(item) for item in value]
    return value


def is_mailbox(address: str) -> bool:
    """A bare address SMTP can deliver to, already in the form replies are sent to."""
    try:
        return reply_address(address) == address
    except Unanswerable:
        return False


def checked_addresses(addresses: list[str]) -> list[str]:
    """The bare recipient addresses, or ValueError naming the first unusable one."""
    out = [a.strip() for a in addresses]
    for address in out:
        if not is_mailbox(address):
            raise ValueError(f"not a recipient address mailbot can send to: {address[:200]!r}")
    if not out:
        raise ValueError("a mail needs at least one recipient")
    return out


def set_text(msg: EmailMessage, name: str, text: str, charset: str = "utf-8") -> None:
    """An unstructured header (Subject) from any text, as one clean line."""
    msg.set_raw(name, encoded(name, clean_header_text(text), charset))


def set_address(msg: EmailMessage, name: str, display: str | None, address: str,
                charset: str = "utf-8") -> None:
    """``From: 表示名 <addr>``; the display name cleaned and encoded, the address checked.

    The address is our own, from the configuration (``[smtp] from``, an issuer's
    ``reply_from``): a plain ``local@host`` is enough, a host without a dot included (the
    default ``mailbot@localhost``); it is not held to the rule for the addresses of others."""
    address = address.strip()
    if not is_own_address(address):
        raise ValueError(f"not a usable sender address: {address[:200]!r}")
    display = clean_header_text(display or "")
    if not display:
        msg.set_raw(name, address)
        return
    plain = formataddr((display, address))  # quoted as needed; only for an ASCII name
    if _PRINTABLE.fullmatch(display) and _fits(name, plain) and "=?" not in display:
        msg.set_raw(name, plain)
        return
    words = Header(display, charset, header_name=name).encode(linesep="\r\n")
    last = words.rsplit("\r\n", 1)[-1]
    gap = " " if len(last) + len(address) + 3 <= MAX_LINE else "\r\n "
    msg.set_raw(name, f"{words}{gap}<{address}>")


def set_recipients(msg: EmailMessage, name: str, addresses: list[str]) -> None:
    """``To: a@x, b@y`` folded between addresses; every address checked."""
    set_list(msg, name, checked_addresses(addresses), ",")


def set_list(msg: EmailMessage, name: str, items: list[str], separator: str) -> None:
    """Printable ASCII items joined by `separator` + space, folded between items."""
    lines: list[str] = []
    width = len(name) + 2
    for index, item in enumerate(items):
        if not _PRINTABLE.fullmatch(item):
            raise ValueError(f"{name}: not printable ASCII: {item[:200]!r}")
        piece = item + (separator if index < len(items) - 1 else "")
        if lines and width + 1 + len(piece) > MAX_LINE:
            lines.append(piece)
            width = 1 + len(piece)
        elif lines:
            lines[-1] += " " + piece
            width += 1 + len(piece)
        else:
            lines.append(piece)
            width += len(piece)
    msg.set_raw(name, "\r\n ".join(lines))


def set_token(msg: EmailMessage, name: str, value: str, limit: int = 200) -> None:
    """A machine-read header of printable ASCII (anything else dropped): never folded text,
    and never anything a reader could take for the start of an RFC 2047 word (``=?``)."""
    token = "".join(c for c in value if "\x21" <= c <= "\x7e")
    while "=?" in token:
        token = token.replace("=?", "?")
    token = token[:limit] or "unknown"
    msg.set_raw(name, token)


def encoded(name: str, text: str, charset: str = "utf-8") -> str:
    """`text` (one clean line) as a header value: as is when it is printable ASCII that
    fits, else RFC 2047 words in `charset` folded with CRLF + space."""
    if _fits(name, text) and "=?" not in text:
        return text
    return Header(text, charset, header_name=name).encode(linesep="\r\n")


def _fits(name: str, text: str) -> bool:
    return bool(_PRINTABLE.fullmatch(text)) and len(name) + 2 + len(text) <= MAX_LINE

"""Build RFC 5322 sample mails byte by byte, keeping the quirks real mailers produce.

The stdlib ``email`` package would "fix" exactly what the samples must keep (RFC 2047 inside
a quoted ``filename=``, ISO-2022-JP with cp932 characters, a wrong charset label), so MIME is
assembled here by hand: a :class:`Part` tree of header lines and bodies, fixed boundaries,
CRLF line ends. Output is deterministic.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Literal

from mailbot.samples.jis import encode_body, encoded_words, rfc2047, rfc2231_value

CRLF = "\r\n"
FilenameStyle = Literal["rfc2231", "outlook", "mac", "plain"]
Transfer = Literal["base64", "quoted-printable", "7bit", "8bit"]


@dataclass
class Part:
    """One MIME entity: header lines (already 7-bit encoded), a body or child parts."""

    headers: list[tuple[str, str]]
    body: bytes = b""
    children: list[Part] = field(default_factory=list)

    @property
    def is_multipart(self) -> bool:
        return bool(self.children)


def _base64_lines(data: bytes) -> bytes:
    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i : i + 76] for i in range(0, len(enc), 76)) + b"\r\n"


def _qp_lines(data: bytes) -> bytes:
    lines = data.split(b"\r\n")
    return b"\r\n".join(binascii.b2a_qp(line) for line in lines)


def transfer_encode(data: bytes, cte: Transfer) -> bytes:
    """Apply a Content-Transfer-Encoding to body bytes that already use CRLF."""
    if cte == "base64":
        return _base64_lines(data)
    if cte == "quoted-printable":
        return _qp_lines(data)
    return data


def text_part(
    text: str,
    *,
    charset: str = "utf-8",
    cte: Transfer = "base64",
    subtype: str = "plain",
    label: str | None = None,
    attachment_name: str | None = None,
) -> Part:
    """A text part encoded in ``charset``; ``label`` overrides the declared charset name."""
    declared = label if label is not None else charset
    ctype = f"text/{subtype}" + (f"; charset={declared}" if declared else "")
    if attachment_name:
        ctype += f'; name="{attachment_name}"'
    headers = [("Content-Type", ctype), ("Content-Transfer-Encoding", cte)]
    if attachment_name:
        headers.append(("Content-Disposition", f'attachment; filename="{attachment_name}"'))
    return Part(headers, transfer_encode(encode_body(text, charset), cte))


def _is_ascii(text: str) -> bool:
    return all(ord(ch) < 128 for ch in text)


def attachment_part(
    data: bytes,
    filename: str | None,
    *,
    ctype: str = "application/pdf",
    style: FilenameStyle = "rfc2231",
) -> Part:
    """A base64 attachment whose file name is written the way a given mailer writes it.

    ``rfc2231`` (Thunderbird, Gmail): ``filename*=UTF-8''…`` plus an RFC 2047 ``name=``;
    ``outlook``: RFC 2047 ISO-2022-JP words inside the quoted ``filename=`` and ``name=``;
    ``mac``: ISO-2022-JP ``name=`` plus ``filename*=ISO-2022-JP''%1B%24B…``;
    ``plain``: a quoted ASCII name as is.
    """
    if filename is None:
        return Part(
            [
                ("Content-Type", ctype),
                ("Content-Disposition", "attachment"),
                ("Content-Transfer-Encoding", "base64"),
            ],
            _base64_lines(data),
        )
    if style == "plain" or _is_ascii(filename):
        name_param = f'"{filename}"'
        disp = f'attachment; filename="{filename}"'
    elif style == "rfc2231":
        name_param = '"' + " ".join(encoded_words(filename, "UTF-8", chars_per_word=12)) + '"'
        disp = f"attachment;{CRLF} filename*={rfc2231_value(filename, 'UTF-8')}"
    elif style == "outlook":
        words = encoded_words(filename, "ISO-2022-JP", chars_per_word=10)
        name_param = '"' + f"{CRLF} ".join(words) + '"'
        disp = "attachment;" + CRLF + ' filename="' + f"{CRLF} ".join(words) + '"'
    elif style == "mac":
        name_param = '"' + f"{CRLF} ".join(encoded_words(filename, "ISO-2022-JP")) + '"'
        disp = f"attachment;{CRLF} filename*={rfc2231_value(filename, 'ISO-2022-JP')}"
    else:
        raise ValueError(f"unknown filename style {style!r}")
    return Part(
        [
            ("Content-Type", f"{ctype};{CRLF} name={name_param}"),
            ("Content-Disposition", disp),
            ("Content-Transfer-Encoding", "base64"),
        ],
        _base64_lines(data),
    )


def message_part(inner: bytes, filename: str | None = None) -> Part:
    """An attached (forwarded) message, message/rfc822, body kept as the original bytes."""
    headers = [("Content-Type", "message/rfc822")]
    if filename is not None:
        value = rfc2231_value(filename, "UTF-8") if not _is_ascii(filename) else f'"{filename}"'
        key = "filename*" if not _is_ascii(filename) else "filename"
        headers.append(("Content-Disposition", f"attachment;{CRLF} {key}={value}"))
    headers.append(("Content-Transfer-Encoding", "8bit"))
    return Part(headers, inner)


def multipart(children: list[Part], subtype: str = "mixed") -> Part:
    """A multipart container; boundaries are assigned when the message is serialised."""
    return Part([("Content-Type", f"multipart/{subtype}")], children=children)


def encode_header_text(text: str, charset: str = "UTF-8") -> str:
    """A header value: ASCII as is, otherwise RFC 2047 encoded words folded over lines."""
    if _is_ascii(text):
        return text
    per_word = 10 if charset.upper() == "ISO-2022-JP" else 12
    return rfc2047(text, charset, chars_per_word=per_word)


def address(display: str | None, addr: str, charset: str = "UTF-8") -> str:
    """``"display" <addr>`` with the display name encoded when it is not ASCII."""
    if not display:
        return addr
    if _is_ascii(display):
        return f'"{display}" <{addr}>'
    return f"{encode_header_text(display, charset)} <{addr}>"


@dataclass
class Envelope:
    """The top-level header fields of a sample mail."""

    sender: str
    to: str
    subject: str
    date: str
    message_id: str
    subject_charset: str = "UTF-8"
    extra: list[tuple[str, str]] = field(default_factory=list)


def _serialise(part: Part, tag: str, counter: list[int]) -> bytes:
    headers = list(part.headers)
    boundary = ""
    if part.is_multipart:
        counter[0] += 1
        boundary = f"=_mailbot_{tag}_{counter[0]:03d}"
        name, value = headers[0]
        headers[0] = (name, f'{value};{CRLF} boundary="{boundary}"')
    out = bytearray()
    for name, value in headers:
        out += f"{name}: {value}{CRLF}".encode("ascii")
    out += CRLF.encode()
    if not part.is_multipart:
        out += part.body
        return bytes(out)
    out += b"This is a multi-part message in MIME format.\r\n"
    for child in part.children:
        out += f"{CRLF}--{boundary}{CRLF}".encode()
        out += _serialise(child, tag, counter)
    out += f"{CRLF}--{boundary}--{CRLF}".encode()
    return bytes(out)


def build_message(env: Envelope, root: Part, *, tag: str = "m") -> bytes:
    """Serialise ``root`` under the envelope headers; ``tag`` makes the boundaries unique."""
    top = [
        ("From", env.sender),
        ("To", env.to),
        ("Subject", encode_header_text(env.subject, env.subject_charset)),
        ("Date", env.date),
        ("Message-ID", env.message_id),
        ("MIME-Version", "1.0"),
        *env.extra,
    ]
    head = "".join(f"{name}: {value}{CRLF}" for name, value in top).encode("ascii")
    return head + _serialise(root, tag, [0])


def mail_with_attachments(
    env: Envelope,
    body: str,
    attachments: list[Part],
    *,
    charset: str = "utf-8",
    cte: Transfer = "base64",
    tag: str = "m",
) -> bytes:
    """The common case: a text/plain body followed by attachment parts (multipart/mixed)."""
    text = text_part(body, charset=charset, cte=cte)
    if not attachments:
        return build_message(env, text, tag=tag)
    return build_message(env, multipart([text, *attachments]), tag=tag)

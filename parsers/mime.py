"""Walk one RFC 5322 message into plain data: body texts and attachment payloads.

Parsing uses the standard library (`BytesParser` with `policy.default`, its parsed headers
cached, docs/reading.md); this
module adds what Japanese mail needs on top: charset fallbacks (via `charset`), file names in
RFC 2231, RFC 2047 words inside quoted parameters (Outlook), Mac's `name=` + `filename*`
pair, forwarded `message/rfc822` parts, and the part-count and size limits. It does not look
inside attachments: the reader decides what a payload is by its content, not its label.
"""

from __future__ import annotations

import email.message
import functools
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.policy import EmailPolicy
from typing import Any, cast

from .charset import decode_bytes
from .headers import clean_header_text, decode_header_value
from .htmltext import html_to_text
from .limits import Limits
from .model import Problem


@dataclass
class Attachment:
    """A payload to look into, with the origin prefix that names it (`attachment:a.zip`)."""

    origin: str
    name: str
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass
class BodyText:
    """Text a person typed: the mail body (`body`) or a text attachment (its origin)."""

    text: str
    origin: str = "body"


@dataclass
class MailContents:
    """Everything a message holds that the notice readers care about, in MIME order.

    `items` mixes texts, attachments and problems in the order they appear, so that
    notices and problems are reported in the order a reader of the mail meets them.
    """

    items: list[BodyText | Attachment | Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    parts_seen: int = 0


MAX_NESTING = 20  # multiparts and forwarded messages inside each other


class _CachedHeaders(EmailPolicy):
    """`policy.default`, with each parsed header kept for the next look-up of the same text.

    The standard library parses a header again on every `get` (and `get_content_type` asks for
    Content-Type several times per part, the feed parser too): two thirds of the reader's time
    went there. A parsed header depends on its name and text alone, so it is shared."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name") or len(value) > _CACHED_HEADER_CHARS:
            return super().header_fetch_parse(name, value)
        return _parsed_header(name, value)


_CACHED_HEADER_CHARS = 2000  # longer values are parsed each time (bounded cache memory)


@functools.lru_cache(maxsize=2048)
def _parsed_header(name: str, value: str) -> Any:
    return policy.default.header_fetch_parse(name, value)


_POLICY = _CachedHeaders()
_PARSER = BytesParser(policy=_POLICY)
_UNSAFE_NAME_RE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def sanitize_name(name: str) -> str:
    """A file name safe to show and to use as one path element (no separators, no controls)."""
    name = _UNSAFE_NAME_RE.sub("_", name).strip().lstrip(".")
    return name[:200] or "unnamed"


def parse_message(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, _PARSER.parsebytes(raw))  # the policy builds EmailMessage parts


def walk_message(raw: bytes, limits: Limits, prefix: str = "") -> MailContents:
    """Collect the bodies and attachments of `raw`; `prefix` names an enclosing attachment."""
    contents = MailContents()
    where = prefix.rstrip("/") or "message"
    if len(raw) > limits.max_message_bytes:
        contents.items.append(
            Problem(
                "attachment_too_large",
                where,
                f"the message is {len(raw):,} bytes, over the limit of "
                f"{limits.max_message_bytes:,}",
            )
        )
        return contents
    try:
        message = parse_message(raw)
    except RecursionError:
        contents.items.append(_too_deep(where))
        return contents
    _walk(message, contents, limits, prefix, 0)
    return contents


def _too_deep(where: str) -> Problem:
    return Problem("too_many_parts", where, f"MIME parts nested more than {MAX_NESTING} deep")


def _walk(part: MIMEPart, out: MailContents, limits: Limits, prefix: str, depth: int) -> None:
    out.parts_seen += 1
    if out.parts_seen > limits.max_parts:
        if not any(isinstance(p, Problem) and p.code == "too_many_parts" for p in out.items):
            out.items.append(
                Problem(
                    "too_many_parts",
                    prefix.rstrip("/") or "message",
                    f"the message has more than {limits.max_parts} MIME parts; "
                    f"only the first {limits.max_parts} were read",
                )
            )
        return
    if depth > MAX_NESTING:
        out.items.append(_too_deep(prefix.rstrip("/") or "message"))
        return
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        name = _safe_filename(part, out.warnings) or "forwarded.eml"
        _walk_embedded(part, name, out, limits, prefix, depth)
        return
    if part.is_multipart():
        for child in part.iter_parts():
            _walk(child, out, limits, prefix, depth + 1)
        return
    label = f"part-{out.parts_seen}"
    try:
        _leaf(part, out, limits, prefix, depth)
    except Exception as exc:  # a header or encoding the standard library chokes on
        origin = f"{prefix}{label}" if prefix else f"attachment:{label}"
        out.items.append(
            Problem("unreadable_attachment", origin, f"the MIME part is malformed ({exc!r:.120})")
        )


def _leaf(part: MIMEPart, out: MailContents, limits: Limits, prefix: str, depth: int) -> None:
    name = _safe_filename(part, out.warnings)
    disposition = (part.get_content_disposition() or "").lower()
    if name and name.lower().endswith(".eml"):
        _walk_embedded(part, name, out, limits, prefix, depth)
        return
    payload = _payload(part)
    ctype = part.get_content_type()
    label = sanitize_name(name) if name else f"part-{out.parts_seen}"
    origin = f"{prefix}{label}" if prefix else f"attachment:{label}"
    if ctype in ("text/plain", "text/html") and disposition != "attachment":
        _add_text(part, payload, ctype, out, "body")
        return
    if ctype in ("text/plain", "text/html") or label.lower().endswith((".txt", ".htm", ".html")):
        if len(payload) > limits.max_attachment_bytes:
            out.items.append(
                Problem(
                    "attachment_too_large",
                    origin,
                    f"{len(payload):,} bytes, over the limit of {limits.max_attachment_bytes:,}",
                )
            )
            return
        _add_text(part, payload, ctype, out, origin)  # a typed notice saved as a file
        return
    # The reader applies the size limit: a photo over it is no reason to write back, a PDF is.
    out.items.append(Attachment(origin, label, payload, ctype))


def _safe_filename(part: MIMEPart, warnings: list[str]) -> str | None:
    try:
        return part_filename(part, warnings)
    except Exception:
        warnings.append("an attachment name could not be decoded; the part is named by number")
        return None


def _walk_embedded(
    part: MIMEPart, name: str, out: MailContents, limits: Limits, prefix: str, depth: int
) -> None:
    label = sanitize_name(name)
    inner_prefix = f"{prefix}{label}/" if prefix else f"attachment:{label}/"
    if part.get_content_type() == "message/rfc822" and part.is_multipart():
        inner = part.get_payload(0)
        if isinstance(inner, MIMEPart):  # always: policy.default builds every part as one
            _walk(inner, out, limits, inner_prefix, depth + 1)
        return
    raw = _payload(part)
    if raw:
        try:
            inner = parse_message(raw)
        except RecursionError:
            out.items.append(_too_deep(inner_prefix.rstrip("/")))
            return
        _walk(inner, out, limits, inner_prefix, depth + 1)


def _payload(part: email.message.Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # malformed transfer encoding: keep what the stdlib gives raw
        data = None
    if isinstance(data, bytes):  # decode=True gives bytes, or None for a multipart
        return data
    raw = part.get_payload()
    return raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""


def _add_text(
    part: email.message.Message, payload: bytes, ctype: str, out: MailContents, origin: str
) -> None:
    decoded = decode_bytes(payload, part.get_content_charset())
    if decoded.lossy:
        out.warnings.append(
            f"text of {origin} could not be decoded exactly (declared "
            f"{part.get_content_charset()!r}, read as {decoded.charset} with replacements)"
        )
    text = html_to_text(decoded.text) if ctype == "text/html" else decoded.text
    out.items.append(BodyText(text, origin))


def part_filename(part: email.message.Message, warnings: list[str]) -> str | None:
    """The attachment's file name, decoded from whichever form the sender's client used."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = _raw_header(part, header)
        if raw is None:
            continue
        helper = email.message.Message(policy=policy.compat32)
        helper[header] = raw
        value = helper.get_param(param, header=header)
        if value is None:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded latin-1)
            charset, _lang, text = value
            name = clean_header_text(
                _decode_param_bytes(text.encode("latin-1", "replace"), charset, warnings))
        else:
            name = _decode_words(value, warnings)
        if name:
            return name
    return None


def _raw_header(part: email.message.Message, header: str) -> str | None:
    for key, value in part.raw_items():
        if key.lower() == header:
            return str(value)
    return None


def _decode_words(value: str, warnings: list[str]) -> str:
    """RFC 2047 encoded words, also inside a quoted parameter; raw 8-bit bytes as well."""
    decoded = decode_header_value(value)
    if decoded.lossy:
        warnings.append("an attachment name could not be decoded exactly")
    return decoded.text


def _decode_param_bytes(data: bytes, charset: str | None, warnings: list[str]) -> str:
    decoded = decode_bytes(data, charset)
    if decoded.lossy:
        warnings.append(f"an attachment name could not be decoded exactly ({charset!r})")
    return decoded.text

"""The few header facts routing and replies need, read once from the raw message."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from email import utils as email_utils
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as _modern

from mailbot.addresses import domain_of
from mailbot.auth import AuthVerdict
from parsers.headers import decode_header_text, raw_header
from parsers.mime import part_filename

from .received import Hop, received_hops


@dataclass(frozen=True)
class MailFacts:
    mailbox: str
    message_id: str | None
    references: str | None  # the References header, for threading the reply
    sender: str | None  # the address a reply goes to (Reply-To, else From), lower-case
    sender_domain: str | None
    to_cc: tuple[str, ...]
    subject: str
    attachment_names: tuple[str, ...]
    auto_submitted: str | None  # RFC 3834; "no" when absent
    precedence: str | None
    list_id: str | None
    return_path: str | None
    in_reply_to: str | None = None
    author: str | None = None  # the From address, lower-case (who wrote it, not Reply-To)
    # Why the header `sender` was taken from does not name one mailbox unambiguously, or None.
    sender_ambiguous: str | None = None
    received: tuple[Hop, ...] = ()  # the Received hops, earliest first (for authentication)
    # What the mail proves about its author (mailbot/auth/): set by the daemon after
    # `mail_facts`, None where nothing was checked (replays, `mailbot parse`).
    auth: AuthVerdict | None = None


_HEADERS_ONLY = BytesParser(policy=compat32)


def _header(message: Message, name: str) -> str | None:
    """A header as one line of text (RFC 2047 words and raw 8-bit bytes decoded with the
    Japanese charset rules bodies get, no control characters), or None when absent."""
    value = raw_header(message, name)
    return None if value is None else decode_header_text(value)


MAX_ADDRESS = 254  # RFC 5321's path limit less the brackets; the store keeps up to 320


def _address(addr: str) -> str | None:
    """A bare address as parsed, lower-case; a control character becomes a space and a lone
    surrogate U+FFFD (never dropped: that would make another, real address), so an address
    that cannot be answered still looks so and is safe to store. Longer than any address
    can be: None."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else
                   "\ufffd" if unicodedata.category(c) == "Cs" else c for c in addr)
    text = text.strip().lower()
    return text if 0 < len(text) <= MAX_ADDRESS else None


# Raw ISO-2022-JP in a header (old Japanese mailers write display names so): its 7-bit bytes
# include ( " < @ , and `(B` of the closing escape opens a comment that swallows the address.
_UNFOLD = re.compile(r"\r?\n|\r")
_JIS_RUN = re.compile(r"\x1b\$[@B].*?(?:\x1b\([BJ]|$)", re.DOTALL)


def address_header(message: Message, name: str) -> str | None:
    """The raw address header `name`, each raw ISO-2022-JP run replaced by one plain word
    (only display names hold such text, and mailbot reads no display name)."""
    value = raw_header(message, name)
    return None if value is None else _JIS_RUN.sub(" jis ", value)


def parseaddr(value: str) -> tuple[str, str]:
    """`email.utils.parseaddr`, but ("", "") where the stdlib's parser gives up: it recurses
    once per nested comment, so a sender's ``((((…))))`` raises RecursionError."""
    try:
        return email_utils.parseaddr(value)
    except Exception:  # noqa: BLE001 — no address is the answer to an unparsable header
        return "", ""


def getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """`email.utils.getaddresses`, one header at a time: a header it cannot parse adds none."""
    out: list[tuple[str, str]] = []
    for value in values:
        try:
            out.extend(email_utils.getaddresses([value]))
        except Exception:  # noqa: BLE001 — as parseaddr above
            continue
    return out


def ambiguity(value: str) -> str | None:
    """Why the address header `value` does not name exactly one mailbox that every reader
    of the mail takes for the same one, or None.

    `parseaddr` answers with one address whatever the header holds. For
    ``victim@other.example.jp <a@maru.example.jp>`` it (and the stdlib's RFC 5322 parser)
    takes the unquoted display name for the address, while a person's mail program answers
    the address in angle brackets; for ``a@maru.example.jp, b@other.example.jp`` it takes the
    first of two authors. A reply must go to the address the sender's own program shows, so
    such a header gets none (the decision says why)."""
    try:
        header = _modern.header_factory("From", _UNFOLD.sub(" ", value).strip())
        found = [a.addr_spec.lower() for a in header.addresses]
        invalid = [str(d) for d in header.defects if "invalid address" in str(d)]
    except Exception as exc:  # noqa: BLE001 — the strict parser failing is an answer too
        return f"the address header cannot be parsed ({type(exc).__name__})"
    if len(found) > 1:
        return f"{len(found)} addresses in one header"
    if invalid:
        return "text beside the address that is neither a display name nor a comment"
    legacy = parseaddr(value)[1].lower().replace('"', "")
    if found and found[0].replace('"', "") != legacy:
        return "the address parsers do not agree on the address"
    return None


def mail_facts(raw: bytes, mailbox: str) -> MailFacts:
    # compat32 parses headers lazily and cheaply; the reader does the careful MIME walk.
    message = _HEADERS_ONLY.parsebytes(raw)
    # Addresses come from the raw header (a decoded display name may hold "<", "," or "@"):
    # only display names are text to decode, and mailbot uses none of them.
    reply_to = address_header(message, "Reply-To") or address_header(message, "From") or ""
    sender = _address(parseaddr(reply_to)[1])
    sender_ambiguous = ambiguity(reply_to) if sender else None
    recipients = tuple(
        a for a in (_address(addr) for _, addr in getaddresses(
            [v for v in (address_header(message, "To"), address_header(message, "Cc")) if v]
        )) if a
    )
    names: list[str] = []
    warnings: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        try:
            name = part_filename(part, warnings)
        except Exception:
            name = None
        if name:
            names.append(name)
    return MailFacts(
        mailbox=mailbox,
        message_id=_header(message, "Message-ID"),
        references=_header(message, "References"),
        sender=sender,
        sender_domain=domain_of(sender),
        to_cc=recipients,
        subject=_header(message, "Subject") or "",
        attachment_names=tuple(names),
        auto_submitted=_header(message, "Auto-Submitted"),
        precedence=_header(message, "Precedence"),
        list_id=_header(message, "List-Id"),
        return_path=_header(message, "Return-Path"),
        in_reply_to=_header(message, "In-Reply-To"),
        author=_address(parseaddr(address_header(message, "From") or "")[1]),
        sender_ambiguous=sender_ambiguous,
        received=received_hops(message),
    )


def body_sha256(raw: bytes) -> str:
    """SHA-256 of everything after the header block (line ends folded to LF), and of any
    Resent-* identity: two deliveries of one message differ only in the trace headers the
    servers on the way added, while a message someone redirects (Resent-Message-ID) is sent
    again on purpose and must not look like a second delivery."""
    text = raw.replace(b"\r\n", b"\n")
    headers, sep, body = text.partition(b"\n\n")
    digest = hashlib.sha256(body if sep else b"")
    parsed = _HEADERS_ONLY.parsebytes(headers + b"\n\n", headersonly=True)
    for name in ("Resent-Message-ID", "Resent-Date", "Resent-From"):
        for value in parsed.get_all(name, []):
            digest.update(f"\0{name}:{value}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()

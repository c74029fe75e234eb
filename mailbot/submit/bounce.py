"""Bounces of submissions: the per-submission return address (VERP) and what a bounce proves.

With `[contractor] bounce_address` (``bounce@maru-kensetsu.example.jp``) every submission goes
out with the envelope sender ``bounce+TOKEN@maru-kensetsu.example.jp``, where TOKEN is an HMAC
of the submission's Message-ID under a key derived from the store's key-hashing secret
(truncated, base32, lower-case: it fits a local part and survives case-folding MTAs).
A delivery-status report fails a submission only when it was addressed to such an address
whose token verifies for a Message-ID the report names (in its message/rfc822 or
text/rfc822-headers part, or its text): anyone can write a bounce, only the relays that
carried the submission saw its token. Anything else that looks like a bounce changes
nothing (the staff hear of it).

The recipient of a listener's mail is not in its bytes, so the report's `To:`,
`Delivered-To:` and `X-Original-To:` are read: a sender can write those, which is why the
token is signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses

# The key the tokens are made with: derived from the store's secret for this use only.
KEY_PURPOSE = "submission bounce address"
TOKEN_BYTES = 10  # 80 bits: 16 base32 characters
# A Message-ID as mailbot writes them (and as reports quote them).
_MSG_ID = re.compile(rb"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")
MAX_NAMED_IDS = 50
MAX_SCANNED = 2_000_000  # bytes of a report searched for the Message-ID
RECIPIENT_HEADERS = ("To", "Delivered-To", "X-Original-To")
MAX_RECIPIENTS = 20


def bounce_token(key: bytes, message_id: str) -> str:
    """The token of `message_id` (lower-case base32, no padding)."""
    digest = hmac.new(key, message_id.strip().encode("utf-8", "surrogateescape"),
                      hashlib.sha256).digest()[:TOKEN_BYTES]
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def bounce_sender(bounce_address: str, key: bytes, message_id: str) -> str:
    """The envelope sender of the submission `message_id`: ``local+TOKEN@domain``."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{bounce_token(key, message_id)}@{domain}"


def tokens_to(bounce_address: str, addresses: list[str]) -> list[str]:
    """The tokens of those `addresses` that are tokened forms of `bounce_address`."""
    local, _, domain = bounce_address.lower().rpartition("@")
    found = []
    for address in addresses:
        a_local, _, a_domain = address.strip().lower().rpartition("@")
        base, plus, token = a_local.partition("+")
        if plus and base == local and a_domain == domain and token and token not in found:
            found.append(token)
    return found


def token_verifies(key: bytes, token: str, message_id: str) -> bool:
    return hmac.compare_digest(token.lower().encode("ascii", "replace"),
                               bounce_token(key, message_id).encode("ascii"))


@dataclass(frozen=True)
class BounceReport:
    """What a mail that looks like a bounce says: to whom it came, which Message-IDs it names."""

    recipients: tuple[str, ...]
    named_ids: tuple[str, ...]
    delivery_status: bool  # multipart/report; report-type=delivery-status


def is_delivery_status(message: Message) -> bool:
    try:
        return (message.get_content_type() == "multipart/report"
                and str(message.get_param("report-type", "")).lower() == "delivery-status")
    except Exception:  # noqa: BLE001 — a sender's Content-Type: not a report
        return False


def read_report(raw: bytes) -> BounceReport:
    """The recipients and named Message-IDs of `raw`. Never raises for a sender's bytes."""
    message = BytesParser(policy=compat32).parsebytes(raw)
    recipients: list[str] = []
    for name in RECIPIENT_HEADERS:
        try:
            values = [str(v) for v in message.get_all(name, [])]
            pairs = getaddresses(values)
        except Exception:  # noqa: BLE001 — an unparsable header names nobody
            continue
        for _display, address in pairs:
            if address and address not in recipients and len(recipients) < MAX_RECIPIENTS:
                recipients.append(address)
    own_id = str(message.get("Message-ID", "")).strip()
    named: list[str] = []
    for chunk in _texts(raw, message):
        for found in _MSG_ID.findall(chunk):
            text = found.decode("ascii")
            if text != own_id and text not in named and len(named) < MAX_NAMED_IDS:
                named.append(text)
    return BounceReport(tuple(recipients), tuple(named), is_delivery_status(message))


def _texts(raw: bytes, message: Message) -> list[bytes]:
    """The report's body as sent (the rfc822 parts' headers are in it), then each decoded
    leaf part (a base64 text part, say)."""
    text = raw.replace(b"\r\n", b"\n")
    _headers, _sep, body = text.partition(b"\n\n")
    chunks = [body[:MAX_SCANNED]]
    budget = MAX_SCANNED
    try:
        for part in message.walk():
            if part.is_multipart() or budget <= 0:
                continue
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                chunks.append(payload[:budget])
                budget -= len(payload)
    except Exception:  # noqa: BLE001 — a damaged part: the raw body was searched already
        pass
    return chunks


def proven_ids(report: BounceReport, bounce_address: str | None, key: bytes) -> list[str]:
    """The named Message-IDs whose token the report was addressed to (normally one)."""
    if not bounce_address:
        return []
    tokens = tokens_to(bounce_address, list(report.recipients))
    return [mid for mid in report.named_ids
            if any(token_verifies(key, token, mid) for token in tokens)]

"""mailbot's own SMTP/LMTP listener's trace header: who connected, written and read here.

The listener (`mailbot/sources/smtp.py`) prepends, as the first two header lines:

    Return-Path: <sender@example.jp>
    X-Mailbot-Client: ip=203.0.113.5; helo=mx.example.jp; protocol=SMTP

No date: a sender's retry of the same message from the same host stays byte-identical, so
the ledger recognises it. The header is believed only for intake by that listener (`smtp`,
`lmtp`) and only in that place — a sender cannot write above the listener's own lines, and
anything further down is the sender's. For IMAP intake it is ignored wherever it appears.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

HEADER = "X-Mailbot-Client"
PROTOCOLS = ("SMTP", "LMTP")
_HELO = re.compile(r"[^A-Za-z0-9.\-_:\[\]]")


@dataclass(frozen=True)
class Trace:
    """What the listener saw: the client's address, its HELO name, SMTP or LMTP, MAIL FROM."""

    ip: str
    helo: str
    protocol: str
    mail_from: str  # "" for the null sender


def clean_helo(helo: str | None) -> str:
    """The HELO argument as the header holds it: hostname characters only, at most 255."""
    return _HELO.sub("", helo or "")[:255] or "unknown"


def trace_header(ip: str, helo: str | None, protocol: str) -> bytes:
    """The header line the listener prepends (after its Return-Path), CRLF-terminated."""
    try:
        address = str(ipaddress.ip_address(ip))
    except ValueError:
        address = "unknown"
    return (f"{HEADER}: ip={address}; helo={clean_helo(helo)}; protocol={protocol}\r\n"
            .encode("ascii"))


def read_trace(headers: list[tuple[str, str]], intake: str) -> Trace | None:
    """The listener's trace, when `intake` is the listener's and its lines open the header."""
    if intake not in ("smtp", "lmtp") or len(headers) < 2:
        return None
    (name0, return_path), (name1, value) = headers[0], headers[1]
    if name0.lower() != "return-path" or name1.lower() != HEADER.lower():
        return None
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, _, field = part.partition("=")
        fields.setdefault(key.strip().lower(), field.strip())
    try:
        ip = str(ipaddress.ip_address(fields.get("ip", "")))
    except ValueError:
        return None
    protocol = fields.get("protocol", "")
    if protocol not in PROTOCOLS:
        return None
    sender = return_path.strip()
    sender = sender[1:-1] if sender.startswith("<") and sender.endswith(">") else sender
    return Trace(ip, fields.get("helo", "unknown"), protocol, sender.strip())

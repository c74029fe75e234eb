"""The relay: one SMTP connection (SSL, STARTTLS or plain, with optional login), sending a
rendered message with the envelope sender of its `From:` (or the one the outbox computed for
the row: a submission's tokened bounce address), and what a failure means."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from mailbot.protocols import TLS_MODES

from .rows import OutboxRow, message_headers


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    tls: str = "none"  # "ssl" | "starttls" | "none"
    user: str | None = None
    # the password, or what reads it when a connection logs in (a config `Secret.reveal`)
    password: str | Callable[[], str] | None = field(default=None, repr=False)
    timeout: float = 30
    helo: str | None = None  # name for EHLO/HELO; the local host name when None

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise ValueError(f"smtp tls must be one of {', '.join(TLS_MODES)}, not {self.tls!r}")


def connect(s: SmtpSettings) -> smtplib.SMTP:
    """An open, greeted (and, if configured, encrypted and logged-in) connection."""
    if s.tls == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            s.host, s.port, local_hostname=s.helo, timeout=s.timeout,
            context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(s.host, s.port, local_hostname=s.helo, timeout=s.timeout)
    try:
        smtp.ehlo_or_helo_if_needed()
        if s.tls == "starttls":
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if s.user:
            password = s.password() if callable(s.password) else s.password
            smtp.login(s.user, password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def send(smtp: smtplib.SMTP, row: OutboxRow, envelope_sender: str | None = None
         ) -> dict[str, tuple[int, bytes]]:
    """Send `row` (with its `raw`) from `envelope_sender`, else its From address; returns
    the recipients refused while others took it."""
    assert row.raw is not None
    sender, _message_id, _subject = message_headers(row.raw)
    sender = envelope_sender or sender
    if sender is None:
        raise ValueError("the message has no From address (the envelope sender)")
    options = []
    if not row.raw.isascii() and smtp.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    return smtp.sendmail(sender, row.recipients, row.raw, mail_options=options)


def smtp_error(exc: BaseException) -> tuple[bool, str]:
    """(permanent?, one line for last_error) of a failed send."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        text = "; ".join(f"{addr}: {code} {reply_text(msg)}"
                         for addr, (code, msg) in refused.items())
        permanent = bool(refused) and all(code >= 500 for code, _msg in refused.values())
        return permanent, f"recipients refused: {text}"
    if isinstance(exc, smtplib.SMTPResponseException):  # data, sender, helo, auth errors
        return (exc.smtp_code >= 500,
                f"{type(exc).__name__}: {exc.smtp_code} {reply_text(exc.smtp_error)}")
    return False, f"{type(exc).__name__}: {exc}"  # disconnected, timeout, refused connection


def reply_text(value: bytes | str) -> str:
    """A server's reply text as str."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

"""The demo's stand-in for the organisation's relay: an SMTP server that keeps every mail and
hands the daemon's own mail back to its LMTP listener."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from dataclasses import dataclass

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Relayed:
    """One message the relay accepted (and, for the daemon's own addresses, handed on)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class _Relay:
    """The stand-in for the relay: keeps everything it is sent and hands mail for the
    daemon's own addresses to the daemon's LMTP listener, one recipient per transaction."""

    def __init__(self, local: tuple[str, ...]) -> None:
        self.local = {a.lower() for a in local}
        self.lmtp_port: int | None = None  # set once the daemon listens
        self.messages: list[Relayed] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope  # noqa: N802
                          ) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content.encode() if isinstance(content, str) else content
        mail_from = envelope.mail_from or ""
        local = [r for r in envelope.rcpt_tos if r.lower() in self.local]
        if local:
            # aiosmtpd runs this in its own loop; the daemon's listener runs another loop in
            # another thread. The blocking LMTP call goes to a worker thread so this loop
            # stays free (it would not deadlock anyway: the two loops share nothing).
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, self._deliver, mail_from, local, raw)
            except (OSError, smtplib.SMTPException) as exc:
                return f"451 4.4.0 could not hand the message to mailbot: {exc}"
        self.messages.append(Relayed(mail_from, tuple(envelope.rcpt_tos), raw))
        return "250 OK"

    def _deliver(self, mail_from: str, local: list[str], raw: bytes) -> None:
        if self.lmtp_port is None:
            raise OSError("the daemon is not listening yet")
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as client:
            for rcpt in local:
                client.sendmail(mail_from, [rcpt], raw)



def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


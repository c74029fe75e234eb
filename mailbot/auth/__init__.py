"""Sender authentication: what a mail proves about its author (DKIM, SPF, DMARC, ARC).

`Authenticator(settings).verdict(raw, intake=...)` returns an `AuthVerdict`
(`mailbot/auth/verdict.py`): from the admin's own MTA's `Authentication-Results` when it
carries a trusted authserv-id, else by verifying the mail itself. `intake` is the mailbox's
kind (`imap`, `smtp`, `lmtp`): only mailbot's own listener's trace header is trusted for the
connecting address (SPF). This package imports no other part of mailbot.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr

from .settings import AuthSettings
from .verdict import (
    UNCHECKED,
    AuthVerdict,
    DkimCheck,
    DmarcCheck,
    Requirement,
    Result,
    SpfCheck,
)


class Authenticator:
    """Computes verdicts with one resolver configuration (see the module docstring)."""

    def __init__(self, settings: AuthSettings | None = None) -> None:
        self.settings = settings or AuthSettings()

    def verdict(self, raw: bytes, *, intake: str = "imap") -> AuthVerdict:
        """The verdict for `raw`. Never raises for anything a sender wrote."""
        # Interface stub: the checks themselves are filled in by the auth work.
        try:
            message = BytesHeaderParser(policy=compat32).parsebytes(raw)
            address = parseaddr(str(message.get("From", "")))[1].lower()
        except Exception:  # noqa: BLE001 — no From is an answer too
            address = ""
        domain = address.rpartition("@")[2] or None
        return AuthVerdict(source="unchecked", from_domain=domain)


__all__ = ["UNCHECKED", "AuthSettings", "AuthVerdict", "Authenticator", "DkimCheck",
           "DmarcCheck", "Requirement", "Result", "SpfCheck"]

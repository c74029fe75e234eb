"""What the admin's `[auth]` table says, as the authenticator needs it (built by
`mailbot/config/auth.py`; the authenticator knows no TOML)."""

from __future__ import annotations

from dataclasses import dataclass

from .verdict import Requirement


@dataclass(frozen=True)
class AuthSettings:
    require: Requirement = Requirement.DMARC  # the default for every counterpart
    # Authentication-Results headers with one of these authserv-ids, added above the trust
    # boundary by the admin's own MTA, are believed; with none, mailbot verifies itself.
    authserv_ids: tuple[str, ...] = ()
    resolvers: tuple[str, ...] = ()  # "address" or "address:port"; empty: /etc/resolv.conf
    timeout_seconds: float = 5.0  # per DNS query; no answer in time is `temperror`
    # How often and how long a mail whose checks met `temperror` waits before it is
    # decided as unauthenticated (the decision record says it waited).
    retry_seconds: int = 300
    retries: int = 6

"""`[auth]`: how mail authors are authenticated (docs/authentication.md).

Interface stub: the `[auth]` table's keys, the per-issuer (`[issuers.ID] auth`) and
per-counterpart (`[issuers.ID.submission] auth`) requirements are read by the auth work.
"""

from __future__ import annotations

from mailbot.auth import AuthSettings

from .reader import Item


def read_auth(item: Item) -> AuthSettings:
    """The `[auth]` table as `AuthSettings` (stub: the defaults)."""
    return AuthSettings()

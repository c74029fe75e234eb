"""Console sessions held by the server: the one owner of `web_sessions`.

The signed session cookie (Starlette's SessionMiddleware) names the account and carries a
random session id; this table holds the SHA-256 of that id, so a reader of the database
cannot take a session over. A session is live while its row is neither ended (log out) nor
past `expires_at` (`[web] session_hours` after its last use). Logging out ends the row: a copy
of the cookie — kept by a proxy log, a shared machine, an attacker — is refused from then
on, which a cookie alone cannot promise. Ending every session of an account (password
change, disable) stays with the account's `changed_at` (mailbot/web/accounts.py)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from mailbot.store.schema import utc, web_sessions

# Session rows (ended or not) are deleted this long after their expiry, at a later log in.
KEEP = timedelta(days=7)
# A session's end is pushed back at a use at most this often.
SLIDE = timedelta(minutes=5)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class Sessions:
    """`web_sessions` on the store's engine; `hours` is how long a log in lasts."""

    def __init__(self, engine: Engine, hours: int) -> None:
        self.engine = engine
        self.lifetime = timedelta(hours=hours)

    def open(self, account: str, address: str | None, now: datetime) -> str:
        """A new session of `account`; returns its id (for the cookie, never stored)."""
        session_id = secrets.token_urlsafe(32)
        now = now.astimezone(UTC)
        with self.engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now - KEEP))
            conn.execute(insert(web_sessions).values(
                id_hash=_hash(session_id), account=account, address=(address or "")[:64],
                created_at=now, expires_at=now + self.lifetime))
        return session_id

    def live(self, session_id: str, account: str, now: datetime) -> bool:
        """Whether `session_id` is a session of `account` neither ended nor expired at
        `now`. A live session's end moves to `hours` after its use (written at most once
        every few minutes, not at every page)."""
        now = now.astimezone(UTC)
        key = _hash(session_id)
        with self.engine.connect() as conn:
            row = conn.execute(select(web_sessions.c.account, web_sessions.c.expires_at).where(
                web_sessions.c.id_hash == key, web_sessions.c.ended_at.is_(None),
                web_sessions.c.expires_at > now)).first()
        if row is None or row.account != account:
            return False
        if utc(row.expires_at) < now + self.lifetime - SLIDE:
            with self.engine.begin() as conn:
                conn.execute(update(web_sessions)
                             .where(web_sessions.c.id_hash == key,
                                    web_sessions.c.ended_at.is_(None))
                             .values(expires_at=now + self.lifetime))
        return True

    def end(self, session_id: str, now: datetime) -> bool:
        """Log out: the session ends now; False when it had already ended."""
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(web_sessions)
                .where(web_sessions.c.id_hash == _hash(session_id),
                       web_sessions.c.ended_at.is_(None))
                .values(ended_at=now.astimezone(UTC))).rowcount)

"""Login throttling, the one owner of `web_login_failures`: at most `limit` failed log ins
per account and per client address in a sliding window; further tries are refused without
checking the password, so that guessing stops while the owner of the account (and everyone
else on another address) still gets in once the window has passed.

The failures are rows of the store, not memory: every console of a cluster (one per node,
behind one proxy) counts the same failures, a restart forgets nothing, and a flood of
failures from many addresses cannot push an account's count out of a bounded table in
memory. Rows older than the window are deleted at each failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from mailbot.store.schema import web_login_failures

KEY_LENGTH = 200  # "account:NAME" (names are at most 64) or "address:IP"


class LoginThrottle:
    def __init__(self, engine: Engine, limit: int = 5,
                 window: timedelta = timedelta(minutes=1)) -> None:
        self.engine = engine
        self.limit = limit
        self.window = window

    def blocked(self, keys: list[str], now: datetime) -> bool:
        """Whether any of `keys` ("account:NAME", "address:IP") had `limit` failures in the
        window before `now`."""
        since = now.astimezone(UTC) - self.window
        with self.engine.connect() as conn:
            for key in keys:
                count = conn.execute(select(func.count()).where(
                    web_login_failures.c.key == key[:KEY_LENGTH],
                    web_login_failures.c.at > since)).scalar_one()
                if count >= self.limit:
                    return True
        return False

    def failed(self, keys: list[str], now: datetime) -> None:
        """One more failure for each of `keys` at `now`."""
        now = now.astimezone(UTC)
        with self.engine.begin() as conn:
            conn.execute(delete(web_login_failures)
                         .where(web_login_failures.c.at <= now - self.window))
            conn.execute(insert(web_login_failures),
                         [{"key": key[:KEY_LENGTH], "at": now} for key in keys])

"""Login throttling: at most `limit` failed log ins per account and per client address in a
sliding window; further tries are refused without checking the password, so that guessing
stops while the owner of the account (and everyone else on another address) still gets in
once the window has passed. Kept in memory: a restart forgets it, which only gives a
guesser another five tries.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta


class LoginThrottle:
    def __init__(self, limit: int = 5, window: timedelta = timedelta(minutes=1),
                 max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def blocked(self, keys: list[str], now: datetime) -> bool:
        """Whether any of `keys` ("account:NAME", "address:IP") had `limit` failures in the
        window."""
        with self._lock:
            return any(len(self._recent(key, now)) >= self.limit for key in keys)

    def failed(self, keys: list[str], now: datetime) -> None:
        with self._lock:
            if len(self._failures) >= self.max_keys:
                # Many addresses at once: forget the oldest entries rather than grow for ever.
                for key in list(self._failures)[: self.max_keys // 10]:
                    del self._failures[key]
            for key in keys:
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)

"""What `/healthz` answers: the daemon's loops alive, no source and no database down too long.

Sources and the database report up and down as they find out (`Health.source`,
`Health.database`); a part that goes down is remembered with the moment it went down, and
`check()` calls it a failure once it has stayed down longer than `down_seconds`. A short
outage (a PostgreSQL restart, an IMAP reconnect) is no failure. The loops are the daemon's
threads (pipeline, IMAP watchers) and its scheduler: each registered with a function saying
whether it still runs; one that stopped is a failure at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DATABASE = "database"


@dataclass(frozen=True)
class Verdict:
    """The answer: healthy or not, and one line per part that is not."""

    ok: bool
    problems: tuple[str, ...]

    def text(self) -> str:
        return "ok\n" if self.ok else "".join(f"{line}\n" for line in self.problems)


class Health:
    """Up/down of the sources and the database, and the loops to check."""

    def __init__(self, down_seconds: float, monotonic: Callable[[], float] = time.monotonic
                 ) -> None:
        self.down_seconds = down_seconds
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._down_since: dict[str, float] = {}  # part ("database", "source NAME") → since
        self._loops: dict[str, Callable[[], bool]] = {}
        self.stopping = False

    def source(self, mailbox: str, up: bool) -> None:
        self._report(f"source {mailbox}", up)

    def database(self, up: bool) -> None:
        self._report(DATABASE, up)

    def _report(self, part: str, up: bool) -> None:
        if up:
            if part in self._down_since:  # the common case (up, already up) takes no lock
                with self._lock:
                    self._down_since.pop(part, None)
            return
        with self._lock:
            self._down_since.setdefault(part, self.monotonic())

    def loop(self, name: str, alive: Callable[[], bool]) -> None:
        """Register a loop; `alive()` says whether it still runs."""
        with self._lock:
            self._loops[name] = alive

    def check(self) -> Verdict:
        now = self.monotonic()
        with self._lock:
            down = dict(self._down_since)
            loops = dict(self._loops)
        problems = [f"{name} stopped" for name, alive in sorted(loops.items()) if not alive()]
        problems += [f"{part} down for {now - since:.0f} s (limit {self.down_seconds:g} s)"
                     for part, since in sorted(down.items()) if now - since > self.down_seconds]
        if self.stopping:
            problems.insert(0, "mailbot is stopping")
        return Verdict(not problems, tuple(problems))

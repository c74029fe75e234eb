"""`[smtp]`, `[send_window]` and `[digest]`: how and when mailbot answers.

The relay's password comes from an environment variable or a file, like every secret.
The send window defaults to weekdays 09:00–17:00 Asia/Tokyo without Japanese national
holidays and without 12/29–1/3; templates listed in `immediate` go out at any hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from .reader import Item, key
from .secrets import Secret
from .values import (
    boolean,
    count,
    own_address,
    port,
    secret,
    string_list,
    strings,
    text,
    time_of_day,
    tls_mode,
)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SmtpConfig:
    host: str = key(text, default="127.0.0.1")
    port: int = key(port({"ssl": 465, "starttls": 587}, 25), default=25)
    tls: str = key(tls_mode("none"), default="none")
    user: str | None = key(text, default=None)
    password: Secret | None = key(secret, "password_env", also=("password_file",), default=None)
    timeout: float = key(count, default=30)
    # default sender when an issuer names none
    from_addr: str = key(own_address, "from", default="mailbot@localhost")
    # how often the outbox sends what is due (whole seconds)
    flush_seconds: int = key(count, default=30)


def _weekdays(item: Item) -> tuple[int, ...]:
    days = string_list(item)
    bad = [d for d in days if d.lower() not in DAYS]
    if bad:
        raise item.fail(f"unknown day {bad[0]!r} (use {', '.join(DAYS)})")
    return tuple(DAYS.index(d.lower()) for d in days) if days else item.default


def _end(item: Item) -> time:
    end = time_of_day(item)
    if end <= item.value("start"):
        raise item.fail("must be later than start")
    return end


@dataclass(frozen=True)
class WindowConfig:
    start: time = key(time_of_day, default=time(9, 0))
    end: time = key(_end, default=time(17, 0))
    weekdays: tuple[int, ...] = key(_weekdays, default=(0, 1, 2, 3, 4))
    skip_holidays: bool = key(boolean, default=True)
    year_end_closed: bool = key(boolean, default=True)  # 12/29–1/3
    immediate: tuple[str, ...] = key(strings, default=())  # templates sent outside the window
    # temporary failures are retried this long, then alerted
    deadline_hours: int = key(count, default=48)


@dataclass(frozen=True)
class DigestConfig:
    at: time = key(time_of_day, default=time(8, 30))
    enabled: bool = key(boolean, default=True)

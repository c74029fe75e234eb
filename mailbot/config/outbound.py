"""`[smtp]`, `[send_window]`, `[digest]` and `[templates]`: how and when mailbot answers.

The relay's password comes from an environment variable or a file, like every secret.
The send window defaults to weekdays 09:00–17:00 Asia/Tokyo without Japanese national
holidays and without 12/29–1/3; templates listed in `immediate` go out at any hour.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

from .reader import TomlReader

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    tls: str = "none"
    user: str | None = None
    password: str | None = None
    timeout: float = 30
    from_addr: str = "mailbot@localhost"  # default sender when an issuer names none
    flush_seconds: int = 30  # how often the outbox sends what is due (whole seconds)


@dataclass(frozen=True)
class WindowConfig:
    start: time = time(9, 0)
    end: time = time(17, 0)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    skip_holidays: bool = True
    year_end_closed: bool = True  # 12/29–1/3
    immediate: tuple[str, ...] = ()  # templates sent outside the window
    deadline_hours: int = 48  # temporary failures are retried this long, then alerted


@dataclass(frozen=True)
class DigestConfig:
    at: time = time(8, 30)
    enabled: bool = True


def read_smtp(r: TomlReader, data: dict[str, Any]) -> SmtpConfig:
    where = "smtp"
    r.no_extra(data, ("host", "port", "tls", "user", "password_env", "password_file",
                      "timeout", "from", "flush_seconds"), where)
    if not data:
        return SmtpConfig()
    tls = r.choice(data, "tls", where, ("none", "starttls", "ssl"))
    port = data.get("port", {"ssl": 465, "starttls": 587}.get(tls, 25))
    if not isinstance(port, int) or not 0 < port < 65536:
        raise r.fail(f"{where}.port", "must be a TCP port number")
    password = None
    if data.get("password_env"):
        password = os.environ.get(data["password_env"])
        if password is None:
            raise r.fail(f"{where}.password_env",
                         f"environment variable {data['password_env']} is not set")
    elif data.get("password_file"):
        try:
            password = Path(data["password_file"]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise r.fail(f"{where}.password_file", f"cannot read it: {exc.strerror}") from None
    return SmtpConfig(
        host=r.string(data, "host", where, optional=True, default="127.0.0.1") or "127.0.0.1",
        port=port,
        tls=tls,
        user=r.string(data, "user", where, optional=True),
        password=password,
        timeout=r.count(data, "timeout", where, 30),
        flush_seconds=r.count(data, "flush_seconds", where, 30),
        from_addr=r.string(data, "from", where, optional=True, default="mailbot@localhost")
        or "mailbot@localhost",
    )


def _time(r: TomlReader, data: dict[str, Any], key: str, where: str, default: time) -> time:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise r.fail(f"{where}.{key}", f"must be a time like 09:00, not {value!r}") from None


def read_window(r: TomlReader, data: dict[str, Any], where: str = "send_window"
                ) -> WindowConfig:
    r.no_extra(data, ("start", "end", "weekdays", "skip_holidays", "year_end_closed",
                      "immediate", "deadline_hours"), where)
    days = r.strings(data, "weekdays", where)
    if days is not None:
        bad = [d for d in days if d.lower() not in DAYS]
        if bad:
            raise r.fail(f"{where}.weekdays", f"unknown day {bad[0]!r} (use {', '.join(DAYS)})")
    window = WindowConfig(
        start=_time(r, data, "start", where, time(9, 0)),
        end=_time(r, data, "end", where, time(17, 0)),
        weekdays=tuple(DAYS.index(d.lower()) for d in days) if days else (0, 1, 2, 3, 4),
        skip_holidays=r.boolean(data, "skip_holidays", where, True),
        year_end_closed=r.boolean(data, "year_end_closed", where, True),
        immediate=r.strings(data, "immediate", where) or (),
        deadline_hours=r.count(data, "deadline_hours", where, 48),
    )
    if window.end <= window.start:
        raise r.fail(f"{where}.end", "must be later than start")
    return window


def read_digest(r: TomlReader, data: dict[str, Any]) -> DigestConfig:
    r.no_extra(data, ("at", "enabled"), "digest")
    return DigestConfig(at=_time(r, data, "at", "digest", time(8, 30)),
                        enabled=r.boolean(data, "enabled", "digest", True))

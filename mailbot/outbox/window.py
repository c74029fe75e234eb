"""When mail may go out: office hours on working days in Japan.

`SendWindow()` is 09:00–17:00 (start inclusive, end exclusive) Monday to Friday, Asia/Tokyo,
closed on Japanese national holidays (`holidays.Japan`, including 振替休日 and 国民の休日)
and over the year-end closure 12/29–1/3. `is_open(dt)` answers for one moment;
`next_open(dt)` is the moment it next opens (`dt` itself when open). Both take aware
datetimes in any zone; nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

MonthDay = tuple[int, int]

# Longest run of closed days `next_open` looks through before it gives up (a window with no
# open day at all is a configuration mistake, not a reason to loop forever).
_MAX_CLOSED_DAYS = 400


@lru_cache(maxsize=64)
def _japanese_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.Japan(years=year).keys())


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _in_range(day: date, first: MonthDay, last: MonthDay) -> bool:
    """Whether `day` lies in the yearly range first..last (inclusive; may cross the year end)."""
    here = (day.month, day.day)
    if first <= last:
        return first <= here <= last
    return here >= first or here <= last


@dataclass(frozen=True)
class SendWindow:
    start: time = time(9, 0)
    end: time = time(17, 0)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    tz: str = "Asia/Tokyo"
    skip_holidays: bool = True
    # Yearly closures as ((month, day), (month, day)), both ends included.
    closed_days: tuple[tuple[MonthDay, MonthDay], ...] = (((12, 29), (1, 3)),)

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"send window: start {self.start} must be before end {self.end}")
        if not self.weekdays or any(d not in range(7) for d in self.weekdays):
            raise ValueError(f"send window: weekdays {self.weekdays!r} must be in 0..6")
        _zone(self.tz)  # an unknown zone fails here, not at the first send

    def is_open_day(self, day: date) -> bool:
        """A working day: right weekday, not a national holiday, not in a yearly closure."""
        if day.weekday() not in self.weekdays:
            return False
        if self.skip_holidays and day in _japanese_holidays(day.year):
            return False
        return not any(_in_range(day, first, last) for first, last in self.closed_days)

    def is_open(self, dt: datetime) -> bool:
        local = self._local(dt)
        return self.start <= local.time() < self.end and self.is_open_day(local.date())

    def next_open(self, dt: datetime) -> datetime:
        """`dt` if the window is open then, else the next moment it opens (in `dt`'s zone)."""
        local = self._local(dt)
        if self.start <= local.time() < self.end and self.is_open_day(local.date()):
            return dt
        day = local.date()
        if local.time() >= self.start:  # today's window is over (or today is closed anyway)
            day += timedelta(days=1)
        for _ in range(_MAX_CLOSED_DAYS):
            if self.is_open_day(day):
                opens = datetime.combine(day, self.start, tzinfo=_zone(self.tz))
                return opens.astimezone(dt.tzinfo)
            day += timedelta(days=1)
        raise ValueError(f"send window never opens within {_MAX_CLOSED_DAYS} days of {dt}")

    def business_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after `start`'s day up to and including `end`'s day (local dates):
        sent on Friday, answered nothing by Tuesday → 2 (Monday and Tuesday)."""
        first, last = self._local(start).date(), self._local(end).date()
        count, day = 0, first + timedelta(days=1)
        while day <= last:
            count += self.is_open_day(day)
            day += timedelta(days=1)
        return count

    def _local(self, dt: datetime) -> datetime:
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise ValueError(f"send window: {dt!r} has no time zone")
        return dt.astimezone(_zone(self.tz))

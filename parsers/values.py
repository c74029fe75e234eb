"""Values in guarantee records: dates (西暦 and 和暦), date-times, yen amounts, counts, flags.

Used by the import-file reader (and by anything else that reads these fields as people and
spreadsheets write them). Each function takes text and returns a plain Python value, or raises
`ValueError` with a short English reason. The reason never repeats the text itself: the caller
adds where it came from (file, line, column) and decides whether the value may be shown.

Width and dash variants are folded by `normalize_text` first, so `令和８年７月１日`,
`２０，０００，０００円` and `R08．07．01` read like their half-width forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from .normalize import fold_spaces, normalize_text

TOKYO = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True)
class Era:
    """A Japanese era (元号): its name, one-letter abbreviation, first and last day."""

    name: str
    letter: str
    start: date
    end: date | None  # None: the current era


# 明治 dates before 明治6年 (1873) were lunar-calendar dates; they are read as Gregorian here,
# which is good enough for a guarantee store.
ERAS: tuple[Era, ...] = (
    Era("明治", "M", date(1868, 10, 23), date(1912, 7, 29)),
    Era("大正", "T", date(1912, 7, 30), date(1926, 12, 24)),
    Era("昭和", "S", date(1926, 12, 25), date(1989, 1, 7)),
    Era("平成", "H", date(1989, 1, 8), date(2019, 4, 30)),
    Era("令和", "R", date(2019, 5, 1), None),
)
_ERA_BY_NAME = {e.name: e for e in ERAS} | {e.letter: e for e in ERAS}
_ERA = "|".join(e.name for e in ERAS) + "|[" + "".join(e.letter for e in ERAS) + "]"

_WESTERN_RES = (
    re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"),  # 2026-07-01, 2026/7/1, 2026.7.1
    re.compile(r"(\d{4})()(\d{2})(\d{2})"),  # 20260701
    re.compile(r"(\d{4})(年)(\d{1,2})月(\d{1,2})日?"),  # 2026年7月1日
)
_ERA_RES = (
    re.compile(rf"({_ERA})(元|\d{{1,2}})()年(\d{{1,2}})月(\d{{1,2}})日?"),  # 令和8年7月1日
    re.compile(rf"({_ERA})(元|\d{{1,2}})([-/.])(\d{{1,2}})\3(\d{{1,2}})"),  # R8.7.1, R08/07/01
)
_WEEKDAY_RE = re.compile(r"\(([月火水木金土日])\)$")  # 令和8年7月1日(水)
_WEEKDAYS = "月火水木金土日"
_DATE_HINT = "not a date (expected e.g. 2026-07-01, 2026/7/1, 20260701, 令和8年7月1日 or R8.7.1)"

_TIME_RE = re.compile(
    r"(?P<date>.+?)(?:[\sTt]+|(?<=日)|(?<=\)))"
    r"(?P<h>\d{1,2})(?::|時)\s*(?P<m>\d{1,2})\s*"
    r"(?:分|(?::|分)\s*(?P<s>\d{1,2})(?:\.(?P<f>\d{1,6}))?\s*秒?)?"
    r"\s*(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?"
)

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_AMOUNT_RE = re.compile(
    rf"金?[¥\\]?(?:(?P<oku>{_NUM})億)?(?:(?P<man>{_NUM})万)?(?P<yen>{_NUM})?(?:円也?|-)?"
)
_NEGATIVE_RE = re.compile(r"[金¥\\]*[-△▲]")
_TRUE = ("はい", "1", "TRUE", "YES")
_FALSE = ("いいえ", "0", "FALSE", "NO")


def parse_date(text: str) -> date:
    """A calendar date written in any of the forms of docs/contracts.md, 和暦 included."""
    compact = fold_spaces(normalize_text(text)).upper()
    if not compact:
        raise ValueError("empty date")
    weekday = _WEEKDAY_RE.search(compact)
    if weekday:
        compact = compact[: weekday.start()]
    result = _western_date(compact)
    if result is None:
        result = _era_date(compact)
    if result is None:
        raise ValueError(_DATE_HINT)
    if weekday and _WEEKDAYS[result.weekday()] != weekday.group(1):
        raise ValueError(
            f"{result.isoformat()} is a {_WEEKDAYS[result.weekday()]}曜日, "
            f"not a {weekday.group(1)}曜日"
        )
    return result


def _western_date(compact: str) -> date | None:
    for pattern in _WESTERN_RES:
        match = pattern.fullmatch(compact)
        if match:
            year, _, month, day = match.groups()
            return _make_date(int(year), int(month), int(day))
    return None


def _era_date(compact: str) -> date | None:
    for pattern in _ERA_RES:
        match = pattern.fullmatch(compact)
        if not match:
            continue
        name, era_year, _, month, day = match.groups()
        era = _ERA_BY_NAME[name]
        year = 1 if era_year == "元" else int(era_year)
        if year == 0:
            raise ValueError(f"there is no year 0 of {era.name} (the first year is 元年)")
        result = _make_date(era.start.year + year - 1, int(month), int(day))
        if result < era.start:
            raise ValueError(f"before the start of {era.name} ({era.start.isoformat()})")
        if era.end is not None and result > era.end:
            raise ValueError(f"after the end of {era.name} ({era.end.isoformat()})")
        return result
    return None


def _make_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"no such date ({year:04d}-{month:02d}-{day:02d})") from None


def parse_datetime(text: str) -> datetime:
    """A date and a time (電子保証発行日時), timezone-aware; a naive time means Asia/Tokyo.

    `2023/10/31 13:15`, `2023-10-31T13:15:00`, `令和5年10月31日 13時15分`, optional seconds; an
    explicit offset (`Z`, `+09:00`) is honoured and converted to Asia/Tokyo.
    """
    normal = normalize_text(text).strip()
    if not normal:
        raise ValueError("empty date and time")
    match = _TIME_RE.fullmatch(normal)
    if match is None:
        parse_date(normal)  # raises the date's own reason when the date is wrong
        raise ValueError("a time is expected after the date (e.g. 2023/10/31 13:15)")
    day = parse_date(match["date"])
    fraction = int((match["f"] or "0").ljust(6, "0"))
    try:
        moment = datetime(
            day.year, day.month, day.day,
            int(match["h"]), int(match["m"]), int(match["s"] or 0), fraction,
        )
    except ValueError:
        raise ValueError("no such time of day") from None
    if match["tz"] is None:
        return moment.replace(tzinfo=TOKYO)
    return moment.replace(tzinfo=_offset(match["tz"])).astimezone(TOKYO)


def _offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if delta >= timedelta(hours=24):
        raise ValueError("no such time zone offset")
    return timezone(-delta if text[0] == "-" else delta)


def parse_amount(text: str) -> int:
    """A whole, non-negative number of yen: `20,000,000円`, `¥20,000,000`, `1億2,000万円`."""
    compact = fold_spaces(normalize_text(text))
    if not compact:
        raise ValueError("empty amount")
    if _NEGATIVE_RE.match(compact):
        raise ValueError("negative amount")
    match = _AMOUNT_RE.fullmatch(compact)
    if match is None or not any(match.group("oku", "man", "yen")):
        raise ValueError("not an amount of yen (expected e.g. 20,000,000 or 2,000万円)")
    parts = match.group("oku", "man", "yen")
    oku, man, yen = (Decimal(part.replace(",", "")) if part else None for part in parts)
    if oku is not None and man is not None and man >= 10_000:
        raise ValueError("the 万 part must be under 10,000 when 億 is given")
    if yen is not None and man is not None and yen >= 10_000:
        raise ValueError("the part after 万 must be under 10,000")
    if yen is not None and oku is not None and man is None and yen >= 100_000_000:
        raise ValueError("the part after 億 must be under 100,000,000")
    zero = Decimal(0)
    total = (oku or zero) * 100_000_000 + (man or zero) * 10_000 + (yen or zero)
    if total != total.to_integral_value():
        raise ValueError("not a whole number of yen")
    return int(total)


def parse_count(text: str) -> int:
    """A whole number ≥ 1, such as a 変更番号 (`1`, `０２`)."""
    digits = fold_spaces(normalize_text(text))
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("not a whole number")
    if int(digits) < 1:
        raise ValueError("must be 1 or more")
    return int(digits)


def parse_flag(text: str) -> bool:
    """Yes or no: `はい`/`いいえ`, `1`/`0`, `true`/`false` (any case), `yes`/`no`."""
    word = fold_spaces(normalize_text(text)).upper()
    if word not in _TRUE + _FALSE:
        raise ValueError("expected はい/いいえ, 1/0 or true/false")
    return word in _TRUE

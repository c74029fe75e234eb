"""Reading `mailbot store import FILE` (docs/contracts.md "Store import") into `GuaranteeEvent`s.

This module only reads and validates; applying the events to the store is someone else's job.
A CSV file (Japanese headers, UTF-8 with or without BOM, or cp932 as Excel writes it) or a
JSON Lines file (`.jsonl`, code names as keys) becomes a list of events in file order, or an
`ImportFileError` that lists every bad row as `"{path}: line {n}, column {column}: {reason}"`.

The 認証キー is a secret: no message ever contains its value, and a value anywhere in a bad
row that looks like a key (8+ ASCII letters and digits with a letter) is not echoed either.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailbot.store.model import EVENT_CODES, EVENTS, GuaranteeEvent
from parsers.model import KINDS
from parsers.normalize import (
    canonical_key,
    canonical_number,
    clean_value,
    fold_spaces,
    normalize_text,
)
from parsers.values import parse_amount, parse_count, parse_date, parse_datetime, parse_flag

#: How many messages an `ImportFileError` lists before "… and N more".
MAX_MESSAGES = 50

#: CSV header → field code name (docs/contracts.md); 低入札 is our extension.
HEADERS: dict[str, str] = {
    "保証契約番号": "guarantee_number", "認証キー": "auth_key", "商品名": "kind",
    "発注者名": "issuer", "請負契約者": "contractor", "工事名": "project_name",
    "JV名": "jv_name", "請負金額": "contract_amount", "保証金額": "guaranteed_amount",
    "預託金融機関": "bank", "工期開始": "term_start", "工期終了": "term_end",
    "保証期限": "expires_on", "請負契約日": "contract_date", "落札日": "awarded_on",
    "保証事業会社": "surety", "電子保証発行日時": "issued_at", "対象": "event",
    "変更番号": "change_no", "低入札": "low_bid",
}
REQUIRED_HEADERS = ("保証契約番号", "認証キー", "商品名", "発注者名", "請負契約者", "工事名")
#: Fields that a 新規 row must fill in; other events may leave them empty ("unchanged").
REQUIRED_ON_NEW = ("guarantee_number", "auth_key", "kind", "issuer", "contractor", "project_name")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
KEY_REASON = "not a valid 認証キー (8–32 ASCII letters and digits expected)"

#: Called with the number of bytes of the file read so far (total: `path.stat().st_size`).
Progress = Callable[[int], None]

_KEYLIKE_RE = re.compile(r"[A-Za-z0-9]{8,}")
_JSON_NUMBER_FIELDS = ("contract_amount", "guaranteed_amount", "change_no", "low_bid")
_JSON_TYPES = {bool: "true/false", int: "number", float: "number", list: "array", dict: "object"}


class ImportFileError(Exception):
    """An import file that cannot be used; `errors` lists the problems, one sentence each."""

    def __init__(self, errors: list[str]) -> None:
        shown = list(errors[:MAX_MESSAGES])
        if len(errors) > MAX_MESSAGES:
            shown.append(f"… and {len(errors) - MAX_MESSAGES} more")
        self.errors = shown
        super().__init__("\n".join(shown))


@dataclass(frozen=True)
class ImportRow:
    """One data row: its first physical line, and either an event or its error messages."""

    line: int
    event: GuaranteeEvent | None
    errors: tuple[str, ...] = ()


def read_import_file(path: Path, progress: Progress | None = None) -> list[GuaranteeEvent]:
    """All events of an import file in file order; `ImportFileError` if any row is bad."""
    events: list[GuaranteeEvent] = []
    errors: list[str] = []
    for row in iter_import_rows(path, progress):
        errors.extend(row.errors)
        if row.event is not None:
            events.append(row.event)
    if errors:
        raise ImportFileError(errors)
    return events


def iter_import_rows(path: Path, progress: Progress | None = None) -> Iterator[ImportRow]:
    """Rows one by one, good and bad (a bad row has `errors` and no event).

    Problems with the whole file (encoding, header) raise `ImportFileError` at once.
    `progress`, if given, is called after each line with the bytes read so far (a position,
    not an increment; the total is `path.stat().st_size`). With tqdm:
    `bar = tqdm(total=path.stat().st_size, unit="B")` and `lambda n: bar.update(n - bar.n)`.
    """
    path = Path(path)
    report = progress or (lambda _done: None)
    if path.suffix.lower() in JSONL_SUFFIXES:
        yield from _jsonl_rows(path, report)
    else:
        yield from _csv_rows(path, report)


def _csv_rows(path: Path, report: Progress) -> Iterator[ImportRow]:
    data = path.read_bytes()
    text, encoding, done = _decode(path, data)

    def lines() -> Iterator[str]:
        nonlocal done
        for line in io.StringIO(text, newline=""):
            done += len(line.encode(encoding, errors="replace"))
            yield line

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise ImportFileError([f"{path}: no header row (the file is empty)"]) from None
    columns = _check_header(path, header)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            report(done)
            break
        except csv.Error as exc:
            yield ImportRow(start, None, (f"{path}: line {start}: not valid CSV ({exc})",))
            break
        report(done)
        if not any(cell.strip() for cell in cells):
            continue
        yield _csv_row(path, start, columns, cells)


def _decode(path: Path, data: bytes) -> tuple[str, str, int]:
    """Text, the encoding to count bytes with, and the bytes already consumed (a BOM)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError([f"{path}: UTF-16 text is not supported; save as CSV (UTF-8)"])
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8"), "utf-8", 3
        except UnicodeDecodeError as exc:
            offset = exc.start + 3
            raise ImportFileError(
                [f"{path}: starts with a UTF-8 BOM but is not UTF-8 (byte offset {offset})"]
            ) from None
    try:
        return data.decode("utf-8"), "utf-8", 0
    except UnicodeDecodeError as utf8:
        try:
            return data.decode("cp932"), "cp932", 0
        except UnicodeDecodeError as cp932:
            raise ImportFileError([
                f"{path}: neither UTF-8 (bad byte at offset {utf8.start}) "
                f"nor cp932 (bad byte at offset {cp932.start})"
            ]) from None


def _check_header(path: Path, header: list[str]) -> list[str | None]:
    """Canonical header names by position (None for a blank header cell)."""
    names = [fold_spaces(normalize_text(cell)) or None for cell in header]
    problems = []
    unknown = [name for name in names if name is not None and name not in HEADERS]
    if unknown:
        hint = " (is the header row missing?)" if any(map(canonical_number, unknown)) else ""
        problems.append(
            f"{path}: line 1: unknown column header(s) {', '.join(map(_show, unknown))}{hint}; "
            f"known: {', '.join(HEADERS)}"
        )
    missing = [name for name in REQUIRED_HEADERS if name not in names]
    if missing:
        problems.append(f"{path}: line 1: missing required column(s) {', '.join(missing)}")
    twice = sorted({n for n in names if n is not None and names.count(n) > 1}, key=names.index)
    if twice:
        problems.append(f"{path}: line 1: column(s) {', '.join(twice)} appear more than once")
    if problems:
        raise ImportFileError(problems)
    return names


def _csv_row(path: Path, line: int, columns: list[str | None], cells: list[str]) -> ImportRow:
    values: list[tuple[str, str, str | None]] = []
    stray = []
    for i in range(max(len(cells), len(columns))):
        name = columns[i] if i < len(columns) else None
        cell = cells[i] if i < len(cells) else ""
        if name is not None:
            values.append((name, HEADERS[name], cell))
        elif cell.strip():
            stray.append(str(i + 1))
    errors = [
        f"{path}: line {line}: a value in column(s) {', '.join(stray)}, which have no header"
    ] if stray else []
    return _row(path, line, values, errors)


def _jsonl_rows(path: Path, report: Progress) -> Iterator[ImportRow]:
    known = set(HEADERS.values())
    done = 0
    with path.open("rb") as stream:
        for line, raw in enumerate(stream, start=1):
            done += len(raw)
            report(done)
            if line == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                reason = f"not UTF-8 (byte {exc.start + 1} of the line)"
                yield _bad(line, f"{path}: line {line}: {reason}")
                continue
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                reason = f"not valid JSON ({exc.msg}, column {exc.colno})"
                yield _bad(line, f"{path}: line {line}: {reason}")
                continue
            if not isinstance(record, dict):
                yield _bad(line, f"{path}: line {line}: not a JSON object")
                continue
            values: list[tuple[str, str, str | None]] = []
            errors = []
            for key, value in record.items():
                if key not in known:
                    errors.append(f"{path}: line {line}, column {_show(key)}: unknown key")
                    continue
                try:
                    values.append((key, key, _from_json(key, value)))
                except ValueError as exc:
                    errors.append(f"{path}: line {line}, column {key}: {exc}")
            values += [(key, key, None) for key in REQUIRED_ON_NEW if key not in record]
            yield _row(path, line, values, errors)


def _bad(line: int, message: str) -> ImportRow:
    return ImportRow(line, None, (message,))


def _row(
    path: Path, line: int, values: list[tuple[str, str, str | None]], errors: list[str]
) -> ImportRow:
    """Validate one row given as (column label, field code, raw value) in file order."""
    raw = {field: value for _, field, value in values}
    problems: list[tuple[int, str, str]] = []  # (position, column, reason)
    event: str | None = "new"
    for position, (column, field, value) in enumerate(values):
        if field == "event" and value is not None and not _empty(value):
            try:
                event = _event(value)
            except ValueError as exc:
                problems.append((position, column, str(exc)))
                event = None
    fields: dict[str, Any] = {}
    for position, (column, field, value) in enumerate(values):
        if field == "event" or (field == "auth_key" and event == "cancellation"):
            continue
        if value is None or _empty(value):
            if field == "guarantee_number" or (event == "new" and field in REQUIRED_ON_NEW):
                where = " on a 新規 row" if event == "new" else ""
                problems.append((position, column, f"empty, but required{where}"))
            continue
        try:
            fields[field] = CONVERTERS[field](value)
        except ValueError as exc:
            problems.append((position, column, str(exc)))
    secrets = _secrets(raw.get("auth_key"))
    for _, column, reason in sorted(problems):
        for secret in secrets:
            reason = reason.replace(secret, "(hidden)")
        errors.append(f"{path}: line {line}, column {column}: {reason}")
    if errors or event is None:
        return ImportRow(line, None, tuple(errors))
    if event == "new":
        fields.setdefault("low_bid", False)  # 低入札 defaults to いいえ; elsewhere None = unchanged
    return ImportRow(line, GuaranteeEvent(event=event, source=f"{path}:{line}", **fields))


def _secrets(key: Any) -> set[str]:
    """The forms of this row's key that must not appear in its messages (belt and braces)."""
    if not isinstance(key, str):
        return set()
    forms = {key.strip(), normalize_text(key).strip(), fold_spaces(normalize_text(key))}
    return {form for form in forms if len(form) >= 8}


def _empty(value: str | None) -> bool:
    return value is None or not normalize_text(value).strip()


def _show(value: str) -> str:
    """A value quoted for an error message, unless it might be a 認証キー."""
    text = normalize_text(value)
    if any(not m.isdigit() for m in _KEYLIKE_RE.findall(text)):
        return "(value not shown: it looks like a 認証キー)"
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _from_json(field: str, value: Any) -> str | None:
    """A JSON value as the text a CSV cell would hold; ValueError for a wrong JSON type."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        if field == "low_bid":
            return "true" if value else "false"
    elif isinstance(value, int | float) and field in _JSON_NUMBER_FIELDS:
        return str(int(value)) if isinstance(value, int) or value.is_integer() else str(value)
    raise ValueError(f"expected a string, not a JSON {_JSON_TYPES.get(type(value), 'value')}")


def _event(text: str) -> str:
    word = fold_spaces(normalize_text(text))
    if word in EVENTS:
        return EVENTS[word]
    if word.lower() in EVENT_CODES:
        return word.lower()
    raise ValueError(f"not one of 新規, 変更, 訂正, 取消: {_show(text)}")


def _number(text: str) -> str:
    number = canonical_number(text)
    if number is None:
        raise ValueError(f"not a valid 保証契約番号 (e.g. 35075-00001M): {_show(text)}")
    return number


def _key(text: str) -> str:
    key = canonical_key(text)
    if key is None:
        raise ValueError(KEY_REASON)
    return key


def _kind(text: str) -> str:
    kind = fold_spaces(normalize_text(text))
    if kind not in KINDS:
        raise ValueError(f"not one of {', '.join(KINDS)}: {_show(text)}")
    return kind


def _parsed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a `parsers.values` function: its reason plus the offending value."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise ValueError(f"{exc}: {_show(text)}") from None

    return convert


_date = _parsed(parse_date)
CONVERTERS: dict[str, Callable[[str], Any]] = {
    "guarantee_number": _number, "auth_key": _key, "kind": _kind,
    "issuer": clean_value, "contractor": clean_value, "project_name": clean_value,
    "jv_name": clean_value, "bank": clean_value, "surety": clean_value,
    "contract_amount": _parsed(parse_amount), "guaranteed_amount": _parsed(parse_amount),
    "term_start": _date, "term_end": _date, "expires_on": _date, "contract_date": _date,
    "awarded_on": _date, "issued_at": _parsed(parse_datetime),
    "change_no": _parsed(parse_count), "low_bid": _parsed(parse_flag),
}

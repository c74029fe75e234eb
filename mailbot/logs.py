"""Logging for every `mailbot` command: one line per event, as JSON or as text.

The modules log with the standard library (`logging.getLogger("mailbot.…")`) and put the
facts an operator filters on in `extra={...}` (ledger_id, mailbox, message_id, outbox_id …).
This module only decides how those records are written (docs/logging.md):

- `json`: one JSON object per line (python-json-logger) with `timestamp` (ISO 8601, UTC),
  `level`, `logger`, `message`, every `extra` field at the top level, and a traceback as
  `exc_info` inside the same line.
- `text`: `TIMESTAMP LEVEL LOGGER: message key=value …` for a person at a terminal.

A decision (the `mailbot.decision` logger) carries its fields in the record attribute
`decision`: in JSON they become the line's own fields, with `message` "decision"; in text the
line is the decision's JSON, as it always was.

mailbot's loggers log at the chosen level; everything else (APScheduler, aiosmtpd,
SQLAlchemy …) goes through the same handler at WARNING or above.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from datetime import datetime
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
THIRD_PARTY_LEVEL = logging.WARNING
DECISION_ATTR = "decision"  # the record attribute that holds a decision's fields
# What every LogRecord has, so what is not an `extra` field (Python 3.11 and 3.12+).
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}
_HANDLER_MARK = "_mailbot_handler"
# Control characters (C0, DEL, C1) and bidirectional overrides: a sender's ESC sequence or
# line break in a logged address or header must not drive the terminal or forge a line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def add_options(parser: argparse.ArgumentParser) -> None:
    """`--log-format` and `--log-level` on the top-level `mailbot` parser and, so that
    `mailbot run --log-format json` works too, on every subcommand below it."""
    _add(parser, None)
    for sub in _subparsers(parser):
        _add(sub, argparse.SUPPRESS)  # a subcommand's absent option leaves the top one's value


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:  # noqa: SLF001 — argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub in action.choices.values():
                found += [sub, *_subparsers(sub)]
    return found


def _add(parser: argparse.ArgumentParser, default: str | None) -> None:
    group = parser.add_argument_group("logging (stderr)")
    group.add_argument("--log-format", choices=FORMATS, default=default,
                       help="one JSON object per line, or text for a person "
                            "(default: text on a terminal, json otherwise)")
    group.add_argument("--log-level", choices=LEVELS, default=default, type=str.upper,
                       help="the least severe event written (default: WARNING; "
                            "INFO for `mailbot run`)")


def default_format(stream: TextIO) -> str:
    """Text for a terminal, JSON for a journal, a file or a pipe."""
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure(log_format: str | None = None, level: str | int = "WARNING",
              stream: TextIO | None = None) -> logging.Handler:
    """One handler on the root logger writing `log_format` lines to `stream` (stderr).

    Calling it again replaces the handler it installed before (tests, the demo)."""
    stream = stream if stream is not None else sys.stderr
    chosen = log_format or default_format(stream)
    if chosen not in FORMATS:
        raise ValueError(f"log format {chosen!r} is not one of {', '.join(FORMATS)}")
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter() if chosen == "json" else TextFormatter())
    handler.addFilter(_LevelFilter(numeric))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, THIRD_PARTY_LEVEL))
    logging.getLogger("mailbot").setLevel(numeric)
    logging.captureWarnings(True)  # warnings.warn() lines get the same format
    return handler


class _LevelFilter(logging.Filter):
    """mailbot's records from `level` up; others from WARNING (or `level`, if higher) up,
    even where a library set its own logger to a lower level (SQLAlchemy's echo)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level, self.others = level, max(level, THIRD_PARTY_LEVEL)

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "mailbot" or record.name.startswith("mailbot.")
        return record.levelno >= (self.level if ours else self.others)


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra` fields (a decision's own fields not among them)."""
    return {key: value for key, value in vars(record).items()
            if key not in _RECORD_ATTRS and key != DECISION_ATTR and not key.startswith("_")}


class MailbotJsonFormatter(JsonFormatter):
    """python-json-logger's formatter with the four fields every line has first and a
    decision's fields lifted to the top level."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        decision = log_data.pop(DECISION_ATTR, None)
        if isinstance(decision, dict):
            log_data["message"] = "decision"
            for key, value in decision.items():
                log_data.setdefault(key, value)  # never over timestamp, level, logger, message


def json_formatter() -> MailbotJsonFormatter:
    return MailbotJsonFormatter(
        "%(timestamp)s %(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True, json_ensure_ascii=False, json_default=_jsonable,
    )


def _jsonable(value: Any) -> Any:
    """Sets, paths, datetimes … as their text: a field never breaks its line."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class TextFormatter(logging.Formatter):
    """`2026-04-01T09:30:00.123+09:00 INFO mailbot.daemon: message key=value …`."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).astimezone()
        line = (f"{when.isoformat(timespec='milliseconds')} {record.levelname} {record.name}: "
                f"{record.getMessage()}")
        extra = fields_of(record)
        if extra:
            line += " " + " ".join(f"{key}={_text_value(value)}" for key, value in extra.items())
        line = _CONTROL.sub(_escaped, line)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                            default=_jsonable)
    return text if text and not any(c.isspace() or c in "\"=" for c in text) else json.dumps(
        text, ensure_ascii=False)

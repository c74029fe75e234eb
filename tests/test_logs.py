"""`--log-format json|text` and `--log-level` (mailbot/logs.py): what a line looks like, what
the level lets through, where the options go on the command line, and what a bad value gets.

The whole-run check that no line holds a key is tests/test_logs_keys.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest

from mailbot import logs

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"[\w.]+: ")


@pytest.fixture
def configured():
    """`logs.configure` on a StringIO; the root logger as it was afterwards."""
    root, ours = logging.getLogger(), logging.getLogger("mailbot")
    levels = root.level, ours.level
    streams: list[io.StringIO] = []

    def configure(log_format: str, level: str = "WARNING") -> io.StringIO:
        stream = io.StringIO()
        streams.append(stream)
        logs.configure(log_format, level, stream)
        return stream

    yield configure
    restore_logging(levels)


def restore_logging(levels: tuple[int, int]) -> None:
    """Undo `logs.configure`: its handlers off the root logger, the root's and mailbot's
    levels back to `levels`, warnings no longer captured."""
    root, ours = logging.getLogger(), logging.getLogger("mailbot")
    for handler in [h for h in root.handlers if getattr(h, "_mailbot_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])
    logging.captureWarnings(False)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_lines_have_the_four_fields_and_the_extra_ones(configured):
    stream = configured("json", "INFO")
    log = logging.getLogger("mailbot.sources.smtp")
    log.info("%d-byte message for mailbox %r is ledger row %d", 120, "keiyaku", 7,
             extra={"ledger_id": 7, "mailbox": "keiyaku", "peer": ("127.0.0.1", 2525)})
    try:
        raise ValueError("〇〇建設")
    except ValueError:
        log.exception("could not record")
    records = [json.loads(line) for line in _lines(stream)]
    assert len(records) == 2  # the traceback stays inside its line
    first, second = records
    assert first["level"] == "INFO" and first["logger"] == "mailbot.sources.smtp"
    assert first["message"] == "120-byte message for mailbox 'keiyaku' is ledger row 7"
    assert (first["ledger_id"], first["mailbox"], first["peer"]) == (7, "keiyaku",
                                                                     ["127.0.0.1", 2525])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", first["timestamp"])
    assert second["level"] == "ERROR" and "ValueError: 〇〇建設" in second["exc_info"]
    assert "〇〇建設" in stream.getvalue()  # written as it is, not \\u-escaped


def test_text_lines_are_for_a_person(configured):
    stream = configured("text", "INFO")
    logging.getLogger("mailbot.outbox").info(
        "outbox row %d sent", 3, extra={"outbox_id": 3, "to": "tanto@maru.example.jp",
                                        "note": "sent, but refused"})
    (line,) = _lines(stream)
    assert TEXT_LINE.match(line), line
    assert line.endswith('INFO mailbot.outbox: outbox row 3 sent outbox_id=3 '
                         'to=tanto@maru.example.jp note="sent, but refused"')


def test_a_decision_is_its_own_json_line_and_the_same_text_as_ever(configured):
    fields = {"ledger_id": 12, "message_id": "<a@maru.example.jp>", "mailbox": "keiyaku",
              "status": "discrepancy", "outcomes": ["key_mismatch"], "problems": [],
              "action": "move:電子保証/要確認"}
    decisions = logging.getLogger("mailbot.decision")
    stream = configured("json", "INFO")
    decisions.info(json.dumps(fields, ensure_ascii=False), extra={"decision": fields})
    (record,) = [json.loads(line) for line in _lines(stream)]
    assert record["message"] == "decision" and record["logger"] == "mailbot.decision"
    assert {k: record[k] for k in fields} == fields  # the decision's fields at the top level
    assert "decision" not in record

    stream = configured("text", "INFO")
    decisions.info(json.dumps(fields, ensure_ascii=False), extra={"decision": fields})
    (line,) = _lines(stream)
    assert TEXT_LINE.match(line)
    assert json.loads(line.split("mailbot.decision: ", 1)[1]) == fields  # no key=value after


@pytest.mark.parametrize("level, shown", [
    ("DEBUG", {"d", "i", "w", "e"}), ("INFO", {"i", "w", "e"}), ("WARNING", {"w", "e"}),
    ("ERROR", {"e"})])
def test_the_level_filters_mailbots_lines_and_others_stay_at_warning(configured, level, shown):
    stream = configured("json", level)
    log = logging.getLogger("mailbot.daemon")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    for name in ("apscheduler.scheduler", "aiosmtpd.smtp", "sqlalchemy.engine"):
        logging.getLogger(name).info("third-party info")
        logging.getLogger(name).warning("third-party warning")
    records = [json.loads(line) for line in _lines(stream)]
    assert {r["message"] for r in records if r["logger"] == "mailbot.daemon"} == shown
    third = [r for r in records if not r["logger"].startswith("mailbot")]
    expected = 3 if level in ("DEBUG", "INFO", "WARNING") else 0
    assert len(third) == expected
    assert all(r["message"] == "third-party warning" for r in third)


def test_configure_again_replaces_its_handler(configured):
    first = configured("json", "INFO")
    second = configured("text", "INFO")
    logging.getLogger("mailbot.x").info("once")
    assert first.getvalue() == "" and len(_lines(second)) == 1


def test_the_default_format_is_text_on_a_terminal_and_json_elsewhere():
    assert logs.default_format(io.StringIO()) == "json"
    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as terminal:
            assert logs.default_format(terminal) == "text"
    finally:
        os.close(leader)
        os.close(follower)


def _mailbot(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    """A command that logs one WARNING (a new key-hashing secret) and exits 1."""
    env = {k: v for k, v in os.environ.items() if k != "MAILBOT_SECRET"}
    return subprocess.run([sys.executable, "-m", "mailbot.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


SHOW = ("store", "show", "35075-00001M", "--store", "sqlite:///s.db")


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_options_work_before_and_after_the_command(tmp_path, where):
    options = ("--log-format", "json")
    args = (*options, *SHOW) if where == "before" else (*SHOW, *options)
    run = _mailbot(*args, cwd=tmp_path)
    assert run.returncode == 1, run.stderr  # the guarantee is not in the store
    lines = run.stderr.splitlines()
    record = json.loads(lines[0])
    assert record["logger"] == "mailbot.store.secret" and record["level"] == "WARNING"
    assert "created a new key-hashing secret" in record["message"]
    assert lines[1:] == ["mailbot store: 35075-00001M: not in the store"]  # the command's own error


def test_text_format_and_level_on_the_command_line(tmp_path):
    run = _mailbot("--log-format", "text", *SHOW, cwd=tmp_path)
    assert TEXT_LINE.match(run.stderr), run.stderr
    assert " WARNING mailbot.store.secret: created a new key-hashing secret" in run.stderr
    (tmp_path / "quiet").mkdir()
    quiet = _mailbot("--log-level", "error", "--log-format", "text", *SHOW,
                     cwd=tmp_path / "quiet")
    assert quiet.returncode == 1
    assert "created a new key-hashing secret" not in quiet.stderr  # a WARNING, below ERROR
    assert quiet.stderr == "mailbot store: 35075-00001M: not in the store\n"


@pytest.mark.parametrize("args, message", [
    (("--log-format", "xml", "parse", "x.eml"),
     "argument --log-format: invalid choice: 'xml' (choose from 'text', 'json')"),
    (("--log-level", "loud", "parse", "x.eml"), "argument --log-level: invalid choice: 'LOUD'"),
    (("parse", "x.eml", "--log-level", "verbose"), "argument --log-level: invalid choice"),
])
def test_a_bad_value_is_a_usage_error(tmp_path, args, message):
    run = _mailbot(*args, cwd=tmp_path)
    assert run.returncode == 2
    assert message in run.stderr and "usage: mailbot" in run.stderr

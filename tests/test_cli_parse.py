"""`mailbot parse` follows the contract of docs/contracts.md: lines, order, exit codes, stderr."""

import json
import subprocess
import sys

from mailbot.samples.notice_pdf import render_notice_pdf

from .notices import FIELDS


def mailbot(*args):
    return subprocess.run(
        [sys.executable, "-m", "mailbot.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_one_json_object_per_path_in_order(tmp_path):
    pdf = tmp_path / "お知らせ.pdf"
    pdf.write_bytes(render_notice_pdf(FIELDS))
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"From: a@example.jp\r\nSubject: hi\r\n\r\nhello\r\n")
    run = mailbot("parse", "--json", str(pdf), str(empty), str(pdf))
    lines = run.stdout.splitlines()
    assert len(lines) == 3
    objects = [json.loads(line) for line in lines]
    assert [o["source"] for o in objects] == [str(pdf), str(empty), str(pdf)]
    assert list(objects[0]) == ["source", "notices", "problems"]
    assert objects[0]["notices"][0]["origin"] == "file:お知らせ.pdf#page=1"
    assert [p["code"] for p in objects[1]["problems"]] == ["no_notice_found"]
    assert run.returncode == 1  # a problem was found in the input


def test_exit_zero_when_everything_reads(tmp_path):
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(render_notice_pdf(FIELDS))
    run = mailbot("parse", str(pdf))
    assert run.returncode == 0, run.stderr
    assert "35075-00001M" in run.stdout and "前払金保証" in run.stdout


def test_missing_file_is_a_usage_error_naming_it(tmp_path):
    run = mailbot("parse", "--json", str(tmp_path / "nope.eml"))
    assert run.returncode == 2
    assert run.stdout == ""
    assert "nope.eml" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_no_arguments_is_a_usage_error():
    assert mailbot("parse").returncode == 2

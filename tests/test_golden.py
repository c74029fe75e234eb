"""Golden samples: `mailbot parse --json` on every generated sample equals its checked-in JSON.

The golden files hold the truth the sample generator put into each sample (never a reader's
output); `UPDATE_GOLDEN=1 pytest tests/test_golden.py` rewrites them from the catalog.
A problem's `detail` is prose for people and is only checked to be there.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailbot.samples.catalog import all_samples, write_samples
from parsers import PROBLEM_CODES

GOLDEN = Path(__file__).parent / "golden"
SAMPLES = {s.name: s for s in all_samples()}


def golden_of(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    paths = write_samples(folder)
    # The slow sample takes about ten seconds of CPU and must hit a short timeout; every
    # other sample gets a timeout no loaded machine reaches, so that a bomb is judged by
    # its size and not by how busy the machine happens to be.
    slow = [p for p in paths if p.stem in SLOW]
    parsed = {**_parse([p for p in paths if p.stem not in SLOW], 120), **_parse(slow, 2)}
    assert sorted(parsed) == sorted(p.stem for p in paths)
    return parsed


SLOW = {"slow_pdf"}


def _parse(paths: list[Path], timeout: int) -> dict[str, dict]:
    run = subprocess.run(
        [sys.executable, "-m", "mailbot.cli", "parse", "--json", "--timeout", str(timeout),
         *map(str, paths)],
        capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode in (0, 1), run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [o["source"] for o in lines] == [str(p) for p in paths]
    return {Path(o["source"]).stem: o for o in lines}


def test_golden_files_match_the_generators_truth():
    if os.environ.get("UPDATE_GOLDEN"):
        for name, sample in SAMPLES.items():
            text = json.dumps(sample.expected, ensure_ascii=False, indent=2) + "\n"
            (GOLDEN / f"{name}.json").write_text(text, encoding="utf-8")
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(SAMPLES)
    for name, sample in SAMPLES.items():
        assert golden_of(name) == sample.expected, name


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_reads_as_golden(parsed, name):
    got = parsed[name]
    want = golden_of(name)
    assert got["notices"] == want["notices"]
    assert [{"code": p["code"], "origin": p["origin"]} for p in got["problems"]] == want["problems"]
    assert all(p["detail"] for p in got["problems"])


def test_every_problem_code_has_a_sample():
    seen = {p["code"] for name in SAMPLES for p in golden_of(name)["problems"]}
    assert seen == set(PROBLEM_CODES)

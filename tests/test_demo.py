"""`mailbot demo` — the README's first command — runs on embedded defaults and reads everything."""

import subprocess
import sys


def test_demo_reads_every_sample_as_expected(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "mailbot.cli", "demo", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "ejcs_cid.eml" in written and "bare_pdf.pdf" in written
    summary = run.stdout.strip().splitlines()[-1]
    total = len(written)
    assert summary.startswith(f"{total}/{total} samples read as expected")
    assert "Z28YUEAJ38ux" not in run.stdout  # keys are masked on screen

"""The wheel is what an issuer installs: it must carry our reply templates and layouts, and
`mailbot demo` must answer every mail when mailbot is imported from the wheel alone.

The wheel is installed with `pip install --target` into a temporary folder and run with
`python -S` and the test environment's site-packages on PYTHONPATH: without site processing
the editable install's finder is not loaded, so `mailbot` comes from the wheel, not from
this checkout, while the dependencies are the ones the suite already has.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    (found,) = out.glob("mailbot-*.whl")
    return found


def test_the_wheel_carries_templates_and_layouts(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    ours = sorted(p.relative_to(ROOT / "templates").as_posix()
                  for p in (ROOT / "templates").rglob("*") if p.is_file())
    assert ours and all(f"mailbot/templates/{name}" in names for name in ours)
    assert {f"parsers/layouts/{p.name}" for p in (ROOT / "parsers" / "layouts").glob("*.toml")} <= names


def test_the_demo_answers_every_mail_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"],
                                                        sysconfig.get_paths()["platlib"]])}
    where = subprocess.run([sys.executable, "-S", "-c", "import mailbot; print(mailbot.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr
    demo = subprocess.run([sys.executable, "-S", "-m", "mailbot.cli", "demo"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=240)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "7/7 replies written" in demo.stdout
    assert "3/3 notices reached the expected state" in demo.stdout
    assert "TemplateNotFound" not in demo.stderr

"""The wheel is what an issuer installs: it must carry our reply templates, layouts and
example configurations, and `mailbot demo` must answer every mail when mailbot is imported
from the wheel alone.

Two installations are checked:

- `pip install --target` into a temporary folder, run with `python -S` and the test
  environment's site-packages on PYTHONPATH: without site processing the editable install's
  finder is not loaded, so `mailbot` comes from the wheel, not from this checkout, while the
  dependencies are the ones the suite already has. Quick; used for the example configs.
- A fresh venv outside the checkout (`python -m venv`, `pip install` the wheel with its
  dependencies from the package index), as an admin would (docs/deploy.md): `mailbot demo`
  from an empty folder must exit 0 with every reply and submission written. Marked `slow`
  (it installs the dependencies), and still in the default run: it is issue 13's Done-when.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (ROOT / "config").glob("*.example.toml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    (found,) = out.glob("mailbot-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(target folder, environment) of the wheel installed with `pip install --target`."""
    target = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"],
                                                        sysconfig.get_paths()["platlib"]])}
    return target, env


def _password_envs(*texts: str) -> dict[str, str]:
    """Every `password_env = "NAME"` of the examples, set: config check reads them."""
    return {name: "example-password" for text in texts
            for name in re.findall(r'^\s*password_env\s*=\s*"([A-Z0-9_]+)"', text, re.M)}


def test_the_wheel_carries_templates_layouts_and_example_configs(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    ours = sorted(p.relative_to(ROOT / "templates").as_posix()
                  for p in (ROOT / "templates").rglob("*") if p.is_file())
    assert ours and all(f"mailbot/templates/{name}" in names for name in ours)
    assert {f"parsers/layouts/{p.name}" for p in (ROOT / "parsers" / "layouts").glob("*.toml")} <= names
    configs = {f"mailbot/example_configs/{p.name}" for p in (ROOT / "config").glob("*.toml")}
    assert EXAMPLES and "mailbot/example_configs/mailbot.starter.toml" in configs <= names


def test_the_demo_answers_every_mail_from_the_wheel(
        installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    target, env = installed
    work = tmp_path / "empty"
    work.mkdir()
    where = subprocess.run([sys.executable, "-S", "-c", "import mailbot; print(mailbot.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr
    demo = subprocess.run([sys.executable, "-S", "-m", "mailbot.cli", "demo"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=240)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "7/7 replies written" in demo.stdout
    assert "3/3 notices reached the expected state" in demo.stdout
    assert "TemplateNotFound" not in demo.stderr


def test_config_check_accepts_the_example_configs_of_the_wheel(
        installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    target, env = installed
    found = subprocess.run(
        [sys.executable, "-S", "-c", "from mailbot.config.examples import examples_folder as f, "
         "example_names as n; print(f() / 'x'); print(*n())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    folder, names = found.stdout.splitlines()
    assert Path(folder).parent == target / "mailbot" / "example_configs", found.stderr
    assert set(EXAMPLES) <= set(names.split())
    texts = [(Path(folder).parent / name).read_text(encoding="utf-8") for name in EXAMPLES]
    check_env = {**env, **_password_envs(*texts)}
    for name in EXAMPLES:
        check = subprocess.run(
            [sys.executable, "-S", "-m", "mailbot.cli", "config", "check",
             str(Path(folder).parent / name)],
            cwd=tmp_path, env=check_env, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, f"{name}: {check.stdout}{check.stderr}"
        assert f"{name}: ok" in check.stdout


def test_init_from_the_wheel_writes_a_config_that_checks(
        installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _target, env = installed
    init = subprocess.run([sys.executable, "-S", "-m", "mailbot.cli", "init", "etc"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stdout + init.stderr
    check = subprocess.run([sys.executable, "-S", "-m", "mailbot.cli", "config", "check",
                            "etc/mailbot.toml"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_a_fresh_venv_outside_the_checkout_runs_the_demo(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                              "--disable-pip-version-check", str(wheel)],
                             env=env, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    mailbot = str(venv / "bin" / "mailbot")
    work = tmp_path / "empty"
    work.mkdir()
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import mailbot; print(mailbot.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    demo = subprocess.run([mailbot, "demo"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "7/7 replies written" in demo.stdout
    assert "3/3 notices reached the expected state" in demo.stdout
    out = work / "demo-out"
    assert len(list((out / "replies").glob("*.eml"))) == 7
    submissions = sorted(p.name for p in (out / "submissions").glob("*.eml"))
    assert len([n for n in submissions if not n.endswith(".answer.eml")]) == 2  # one unroutable
    assert len([n for n in submissions if n.endswith(".answer.eml")]) == 2
    assert "Traceback" not in demo.stderr

    # The admin's first steps work from the installed package too.
    init = subprocess.run([mailbot, "init", "etc"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=60)
    assert init.returncode == 0, init.stdout + init.stderr
    migrate = subprocess.run([mailbot, "migrate", "--config", "etc/mailbot.toml"], cwd=work,
                             env=env, capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0 and "migrated from revision (empty database)" in migrate.stdout, \
        migrate.stdout + migrate.stderr
    # PostgreSQL's driver is an extra: without it, a clear word on what to install.
    no_driver = subprocess.run([mailbot, "migrate", "--store",
                                "postgresql+psycopg://mailbot@127.0.0.1:1/mailbot"],
                               cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert no_driver.returncode == 2, no_driver.stdout + no_driver.stderr
    assert "pip install 'mailbot[postgresql]'" in no_driver.stderr

"""`mailbot web` and `mailbot web user …` as an admin runs them (issue 16)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from .conftest import TEST_SECRET
from .web_console import CONFIG

PASSWORD = "a long enough password"


def mailbot(*args: str, config, stdin: str = "", timeout: float = 120):
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    return subprocess.run([sys.executable, "-m", "mailbot.cli", *args, "--config", str(config)],
                          input=stdin, capture_output=True, text=True, env=env, timeout=timeout)


def stops_on_sigterm(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def killed_if_running(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def write_config(tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text(CONFIG.format(url=f"sqlite:///{tmp_path / 'm.db'}", spool=tmp_path / "spool",
                                  smtp_port=2525, extra=""), encoding="utf-8")
    return path


def test_user_add_list_passwd_disable(tmp_path):
    config = write_config(tmp_path)
    added = mailbot("web", "user", "add", "tanaka", "--role", "operator", "--issuer", "maru",
                    "--password-stdin", config=config, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    listed = mailbot("web", "user", "list", config=config)
    assert "tanaka\toperator\tissuers=maru\tcontractor=no\tenabled" in listed.stdout
    assert PASSWORD not in listed.stdout + listed.stderr
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    config_first = subprocess.run([sys.executable, "-m", "mailbot.cli", "web", "--config",
                                   str(config), "user", "list"], capture_output=True, text=True,
                                  env=env, timeout=120)
    assert config_first.stdout == listed.stdout, config_first.stderr
    changed = mailbot("web", "user", "passwd", "tanaka", "--password-stdin", config=config,
                      stdin="another long password\n")
    assert changed.returncode == 0 and "sessions have ended" in changed.stdout
    assert mailbot("web", "user", "disable", "tanaka", config=config).returncode == 0
    assert "disabled" in mailbot("web", "user", "list", config=config).stdout


def test_user_errors_name_the_field(tmp_path):
    config = write_config(tmp_path)
    unknown = mailbot("web", "user", "add", "tanaka", "--role", "viewer", "--issuer", "nowhere",
                      "--password-stdin", config=config, stdin=PASSWORD + "\n")
    assert unknown.returncode == 2
    assert "--issuer nowhere: no [issuers.nowhere]" in unknown.stderr
    short = mailbot("web", "user", "add", "tanaka", "--role", "viewer", "--issuer", "maru",
                    "--password-stdin", config=config, stdin="short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    missing = mailbot("web", "user", "passwd", "nobody", "--password-stdin", config=config,
                      stdin=PASSWORD + "\n")
    assert missing.returncode == 2 and "no account 'nobody'" in missing.stderr
    no_tty = mailbot("web", "user", "add", "tanaka", "--role", "viewer", "--issuer", "maru",
                     config=config)
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr


def test_web_serves_until_sigterm(tmp_path):
    config = write_config(tmp_path)
    assert mailbot("web", "user", "add", "admin", "--role", "admin", "--issuer", "*",
                   "--password-stdin", config=config, stdin=PASSWORD + "\n").returncode == 0
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    process = subprocess.Popen(
        [sys.executable, "-m", "mailbot.cli", "web", "--config", str(config),
         "--listen", "127.0.0.1:0"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"serving on (http://127\.0\.0\.1:\d+)", line)
        assert found, line
        answer = httpx.get(found.group(1) + "/login", timeout=30)
        assert answer.status_code == 200 and "ログイン" in answer.text
        stops_on_sigterm(process)
    finally:
        killed_if_running(process)


def test_web_on_a_port_in_use_says_so(tmp_path):
    import socket

    config = write_config(tmp_path)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        started = time.monotonic()
        run = mailbot("web", "--listen", f"127.0.0.1:{port}", config=config)
    assert run.returncode == 2, run.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in run.stderr
    assert time.monotonic() - started < 100
    bad = mailbot("web", "--listen", "nowhere", config=config)
    assert bad.returncode == 2 and "give HOST:PORT" in bad.stderr


def test_run_serves_the_console_beside_the_daemon(tmp_path):
    from .servers import free_port

    port = free_port()
    path = tmp_path / "mailbot.toml"
    path.write_text(CONFIG.format(url=f"sqlite:///{tmp_path / 'm.db'}", spool=tmp_path / "spool",
                                  smtp_port=2525,
                                  extra=f'[web]\nlisten = "127.0.0.1:{port}"\n'
                                        "run_with_daemon = true\n"), encoding="utf-8")
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    process = subprocess.Popen([sys.executable, "-m", "mailbot.cli", "run", "--config", str(path),
                                "--workers", "1"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        answer = None
        while answer is None:
            assert process.poll() is None, "mailbot run stopped"
            assert time.monotonic() < deadline, "the console never answered"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer.status_code == 200 and "ログイン" in answer.text
        stops_on_sigterm(process)
    finally:
        killed_if_running(process)

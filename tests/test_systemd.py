"""systemd: the sd_notify messages `mailbot run` sends, received on a socket the test owns,
and `systemd-analyze verify` on contrib/systemd/mailbot.service."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from mailbot.cli import build_parser
from mailbot.systemd import notify

from .configs import issuer_config
from .servers import free_port

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "contrib" / "systemd" / "mailbot.service"


def _receive_until(sock: socket.socket, wanted: str, seconds: float,
                   process: subprocess.Popen[str] | None = None) -> list[str]:
    """Every message received until one holds the line `wanted`; fails at the deadline."""
    messages: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
        try:
            messages.append(sock.recv(4096).decode("utf-8"))
        except TimeoutError:
            if process is not None and process.poll() is not None:
                break
            continue
        if wanted in messages[-1].split("\n"):
            return messages
    output = process.communicate(timeout=30) if process and process.poll() is not None else ""
    raise AssertionError(f"no {wanted} within {seconds}s; got {messages}; {output}")


def test_notify_sends_one_datagram_to_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1", "STATUS=running")
        sock.settimeout(5)
        assert sock.recv(4096) == b"READY=1\nSTATUS=running"


def test_notify_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"mailbot-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("STOPPING=1")
        sock.settimeout(5)
        assert sock.recv(4096) == b"STOPPING=1"


def test_notify_without_systemd_or_with_a_dead_socket(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert notify("READY=1") is False
    assert "could not notify systemd" in caplog.text


def test_run_says_ready_then_stopping(tmp_path: Path) -> None:
    """`mailbot run` with an LMTP listener: READY=1 once it answers, STOPPING=1 on SIGTERM."""
    config = tmp_path / "mailbot.toml"
    port = free_port()
    text = issuer_config(f"sqlite:///{tmp_path / 'store.db'}")
    assert 'listen = "127.0.0.1:0"' in text
    config.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'),
                      encoding="utf-8")
    name = f"mailbot-test-{uuid.uuid4().hex}"
    env = {**os.environ, "NOTIFY_SOCKET": "@" + name,
           "MAILBOT_SECRET": "test-secret-for-the-store-0123456789"}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        process = subprocess.Popen(
            [sys.executable, "-m", "mailbot.cli", "run", "--config", str(config), "--workers", "1"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            started = _receive_until(sock, "READY=1", 180, process)
            assert any(line.startswith("STATUS=opening the store")
                       for m in started for line in m.split("\n"))
            assert "STATUS=running: mailboxes keiyaku" in started[-1].split("\n")
            assert process.poll() is None
            with smtplib.LMTP("127.0.0.1", port, timeout=30) as lmtp:  # up when READY=1 came
                assert lmtp.noop()[0] == 250
            process.send_signal(signal.SIGTERM)
            stopping = _receive_until(sock, "STOPPING=1", 120, process)
            assert "STATUS=stopping" in stopping[-1].split("\n")
            assert process.wait(timeout=120) == 0
        finally:
            if process.poll() is None:
                process.kill()
            output = process.communicate(timeout=30)[0]
    assert "Traceback" not in output, output


def _unit_lines() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_asks_for_what_the_deployment_relies_on() -> None:
    unit = _unit_lines()
    expected = {"Type": ["notify"], "Restart": ["on-failure"], "StateDirectory": ["mailbot"],
                "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"], "PrivateTmp": ["yes"],
                "User": ["mailbot"]}
    assert {k: unit.get(k) for k in expected} == expected
    assert "mailbot.secret:/etc/mailbot/mailbot.secret" in unit["LoadCredential"]
    # ExecStart's arguments are a real `mailbot run` command line.
    (exec_start,) = unit["ExecStart"]
    binary, *arguments = shlex.split(exec_start)
    assert binary.endswith("/bin/mailbot")
    args = build_parser().parse_args(arguments)
    assert args.command == "run" and args.config == "/etc/mailbot/mailbot.toml"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` works without a running systemd (no PID 1 needed), but
    insists that ExecStart's binary exists: the unit's /opt/mailbot/bin/mailbot is swapped
    for the mailbot this test environment installed, and nothing else is changed."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found: apt-get install systemd (scripts/apt-packages.txt)"
    ours = Path(sys.executable).parent / "mailbot"
    assert ours.exists(), f"{ours}: the console script of this environment's mailbot"
    text = UNIT.read_text(encoding="utf-8")
    assert text.count("/opt/mailbot/bin/mailbot ") == 1
    copy = tmp_path / "mailbot.service"  # the name verify reports under must stay the unit's
    copy.write_text(text.replace("/opt/mailbot/bin/mailbot ", f"{ours} "), encoding="utf-8")
    run = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and not run.stderr.strip(), run.stdout + run.stderr

    broken = tmp_path / "broken" / "mailbot.service"  # and the check does catch mistakes
    broken.parent.mkdir()
    broken.write_text(text.replace("Type=notify", "Type=notifyy"), encoding="utf-8")
    bad = subprocess.run([analyze, "verify", "--man=no", str(broken)], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 or "notifyy" in bad.stderr

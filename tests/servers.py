"""Real servers for tests and benchmarks, started on loopback in a temporary folder.

PostgreSQL (Debian's `postgresql` package, docs/testing.md) will not run as root, so the data
folder is given to the `postgres` user and the server binaries run as that user. Nothing
here is a mock: a missing binary is an error telling what to install, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def postgres_server() -> Iterator[str]:
    """A running PostgreSQL; yields the SQLAlchemy URL of its `postgres` database.

    A start that fails is tried again (twice, each in a fresh folder, on a fresh port) and
    said on stderr: the failure seen so far was the server tools exiting at once on a loaded
    machine, with nothing in their output. When every try fails, the error carries the
    tools' output and the server's log."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"{PG_BIN}/initdb not found: apt-get install postgresql")
    for attempt in range(1, 4):
        try:
            folder, data, port = _start_postgres()
            break
        except RuntimeError as exc:
            if attempt == 3:
                raise
            print(f"tests/servers.py: PostgreSQL did not start (try {attempt}): {exc}",
                  file=sys.stderr)
    try:
        yield f"postgresql+psycopg://mailbot@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def _start_postgres() -> tuple[Path, Path, int]:
    """(folder, data folder, port) of a freshly started server, or RuntimeError saying why."""
    folder = Path(tempfile.mkdtemp(prefix="mailbot-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    data, log = folder / "data", folder / "log"
    options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
    for command in (
        [str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "mailbot", "-E", "UTF8",
         "--no-locale"],
        [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
    ):
        run = subprocess.run(_as_postgres(command), capture_output=True, text=True)
        if run.returncode:
            server_log = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(
                f"{Path(command[0]).name} exited {run.returncode}; stdout: {run.stdout[-1000:]!r}"
                f"; stderr: {run.stderr[-1000:]!r}; server log: {server_log!r}")
    return folder, data, port


def create_database(server_url: str, name: str) -> str:
    """A fresh database on the server at `server_url`; returns its URL."""
    import psycopg

    dsn = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


# -- Dovecot IMAP + LMTP (docs/testing.md) --------------------------------------------------------

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")

_DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
mail_plugins =
mail_fsync = never
stats_writer_socket_path =
default_internal_user = nobody
default_internal_group = nogroup
default_login_user = nobody
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service anvil {{
  chroot =
}}
{environment}"""
# Dovecot's master clears the environment of the processes it starts: under scripts/test's
# faketime runs, IMAP and LMTP must see the same faked clock as the tests (INTERNALDATE).
_FAKETIME_ENV = ("LD_PRELOAD", "FAKETIME", "DONT_FAKE_MONOTONIC", "FAKE_UTIME")


def _dovecot_environment() -> str:
    if not os.environ.get("FAKETIME"):
        return ""
    names = " ".join(n for n in _FAKETIME_ENV if os.environ.get(n))
    return f"import_environment = TZ {names}\n"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    """Running, not a zombie (the daemonized master's parent is init, which may reap late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _wait_until(check, seconds: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} within {seconds} s\n{tail}")
        time.sleep(0.05)


class Dovecot:
    """One Dovecot on loopback; `stop()` and `start()` keep its ports and maildirs."""

    host = "127.0.0.1"

    def __init__(self, users: dict[str, str], imap_capability: str | None = None) -> None:
        for binary in (DOVECOT, DOVEADM):
            if not binary.exists():
                raise RuntimeError(
                    f"{binary} not found: apt-get install dovecot-imapd dovecot-lmtpd"
                )
        self.root = Path(tempfile.mkdtemp(prefix="mailbot-dovecot-"))
        self.root.chmod(0o755)  # the mail processes run as nobody and must reach mail/
        self.users = dict(users)
        self.imap_port, self.lmtp_port = free_port(), free_port()
        while self.lmtp_port == self.imap_port:
            self.lmtp_port = free_port()
        mail = self.root / "mail"
        mail.mkdir()
        shutil.chown(mail, "nobody", "nogroup")
        (self.root / "users").write_text(
            "".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in users.items())
        )
        self.config_path = self.root / "dovecot.conf"
        config = _DOVECOT_CONF.format(
            root=self.root, imap_port=self.imap_port, lmtp_port=self.lmtp_port,
            environment=_dovecot_environment())
        if imap_capability is not None:  # e.g. without IDLE and MOVE, to test fallbacks
            config += f"imap_capability = {imap_capability}\n"
        self.config_path.write_text(config)
        self.log_path = self.root / "dovecot.log"
        self.running = False

    def start(self) -> None:
        # The master daemonizes: its output goes to a file, or a pipe would never close.
        with open(self.root / "startup.log", "ab") as out:
            subprocess.run([str(DOVECOT), "-c", str(self.config_path)], check=True,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.running = True
        pid_file = self.root / "run" / "master.pid"
        _wait_until(lambda: pid_file.exists() and _port_open(self.imap_port)
                    and _port_open(self.lmtp_port), 15,
                    "Dovecot did not accept connections", self.log_path)

    def stop(self) -> None:
        """SIGTERM to the master (`doveadm stop` does the same but polls slower); waits."""
        if not self.running:
            return
        pid_file = self.root / "run" / "master.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        if pid is not None:
            children = _children(pid)
            os.kill(pid, signal.SIGTERM)
            _wait_until(lambda: not _alive(pid), 15,
                        "Dovecot's master process did not exit", self.log_path)
            # IMAP sessions outlive the master; a real restart would end them too.
            for child in children:
                if _alive(child):
                    os.kill(child, signal.SIGKILL)
            _wait_until(lambda: not any(_alive(c) for c in children), 15,
                        "Dovecot's session processes did not exit", self.log_path)
        else:
            subprocess.run([str(DOVEADM), "-c", str(self.config_path), "stop"],
                           capture_output=True)
        self.running = False
        _wait_until(lambda: not _port_open(self.imap_port) and not _port_open(self.lmtp_port),
                    15, "Dovecot did not close its ports", self.log_path)

    def deliver(self, user: str, raw: bytes, sender: str = "sender@maru.example.jp") -> None:
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=15) as lmtp:
            refused = lmtp.sendmail(sender, [user], raw)
        if refused:
            raise RuntimeError(f"LMTP refused {refused}")

    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        """The maildir++ folder on disk (hierarchy separator '.', names in modified UTF-7)."""
        base = self.root / "mail" / user
        if folder.upper() == "INBOX":
            return base
        from imapclient.imap_utf7 import encode

        return base / ("." + encode(folder.replace("/", ".")).decode("ascii"))

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        out = subprocess.run(
            [str(DOVEADM), "-c", str(self.config_path), "-f", "flow", "mailbox", "status",
             "-u", user, "uidvalidity", folder.replace("/", ".")],
            check=True, capture_output=True, text=True,
        ).stdout
        return int(out.split("uidvalidity=")[1].split()[0])

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Give `folder` a new UIDVALIDITY (and new UIDs), keeping its messages; returns it.

        With Dovecot stopped, the folder's `dovecot-uidlist` (UID ↔ file name map holding the
        UIDVALIDITY) and its index files are deleted; on the next access Dovecot rebuilds
        them from the message files, numbering the messages from 1 under a new UIDVALIDITY
        taken from the user's `dovecot-uidvalidity` counter, which only goes up. The message
        files (with their flags in the file names) stay untouched.
        """
        before = self.uidvalidity(user, folder)
        was_running = self.running
        self.stop()
        path = self.maildir(user, folder)
        for name in ("dovecot-uidlist", "dovecot-uidlist.lock", "dovecot.index",
                     "dovecot.index.log", "dovecot.index.log.2", "dovecot.index.cache"):
            (path / name).unlink(missing_ok=True)
        if was_running:
            self.start()
        after = self.uidvalidity(user, folder)
        if after == before:
            raise RuntimeError(f"UIDVALIDITY of {user}/{folder} did not change ({after})")
        return after

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def dovecot_server(users: dict[str, str], imap_capability: str | None = None
                   ) -> Iterator[Dovecot]:
    """A running Dovecot (IMAP + LMTP) for `users` (address → password).

    `imap_capability` replaces the advertised IMAP capabilities (Dovecot 2.3 has MOVE, IDLE
    and UIDPLUS by default).
    """
    server = Dovecot(users, imap_capability)
    try:
        server.start()
        yield server
    finally:
        server.close()


class Sink:
    """Records every DATA; answers the queued statuses first, then 250."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str, list[str], bytes]] = []
        self.attempts: list[tuple[str, bytes]] = []
        self.answers: list[str] = []
        self.rcpt_answers: dict[str, str] = {}  # address → status for RCPT TO

    def refuse(self, status: str, times: int) -> None:
        self.answers.extend([status] * times)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        status = self.rcpt_answers.get(address, "250 2.1.5 OK")
        if status.startswith("250"):
            envelope.rcpt_tos.append(address)
        return status

    async def handle_DATA(self, server, session, envelope):
        status = self.answers.pop(0) if self.answers else "250 2.0.0 OK"
        self.attempts.append((status, envelope.content))
        if status.startswith("250"):
            self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return status

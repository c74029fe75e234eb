"""A hostile review of issue 13 (install and operate): what an admin, an attacker or a
careless operator could break, each finding pinned by a test that failed before its fix.

- The SQLite store was created with the umask's mode (0644 outside systemd), yet its outbox
  holds rendered mail with clear 認証キー: now 0600, by `Store.open` and `mailbot migrate`.
- `mailbot status --check` on a store that is not there (a typo, a lost file, an unmounted
  disk) created an empty database and a new secret beside it and answered OK; on an
  unmigrated store it migrated it. Now CRITICAL, and it creates and changes nothing.
- `[retention] raw_days` of a million passed `config check`, then every purge (the daily
  job and `mailbot purge`) died with OverflowError: now a configuration error.
- The text log wrote a sender's control characters as they came (an ESC sequence in an SMTP
  recipient reached an operator's terminal): now escaped.
"""

from __future__ import annotations

import io
import logging
import os
import smtplib
import stat
import subprocess
import sys
from email import message_from_bytes
from email.policy import SMTP
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select, text

from mailbot import logs
from mailbot.checks import CRITICAL, OK, status_check
from mailbot.cli import main
from mailbot.cli.migrate import current_revision, head_revision
from mailbot.config import ConfigError, load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.retention import purge
from mailbot.sources.smtp import IntakeListener, ListenerSettings
from mailbot.store import Store
from mailbot.store.migrate import MIGRATIONS
from mailbot.store.schema import metadata
from parsers import Reader

from .configs import issuer_config
from .conftest import TEST_SECRET
from .test_logs import restore_logging
from .test_retention import NOTICE, NOW, OLD, SAMPLE, retention_world


@pytest.fixture
def loose_umask():
    """The umask of a shell outside systemd (0022), restored afterwards."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the SQLite file ---------------------------------------------------------------------
def test_mailbot_migrate_creates_the_sqlite_store_private(tmp_path, loose_umask, capsys):
    db = tmp_path / "mailbot.db"
    assert main(["migrate", "--store", f"sqlite:///{db}"]) == 0
    assert _mode(db) == 0o600


def test_the_store_and_its_wal_files_are_private_with_rendered_mail_in_them(
        tmp_path, loose_umask):
    """The daemon's own first start (Store.open) on a fresh file, then rows written: the
    database, its -wal and -shm are the owner's alone."""
    db = tmp_path / "mailbot.db"
    store = Store.open(f"sqlite:///{db}", secret=TEST_SECRET)
    try:
        Ledger(store.engine, Spool(tmp_path / "spool")).receive(
            "keiyaku", b"Subject: t\r\n\r\n\xe8\xaa\x8d\xe8\xa8\xbc Z28YUEAJ38ux\r\n")
        with store.engine.connect() as conn:  # keep the WAL open while looking
            conn.execute(text("SELECT 1"))
            files = [p for p in tmp_path.iterdir() if p.name.startswith("mailbot.db")]
            assert {p.name for p in files} >= {"mailbot.db", "mailbot.db-wal"}
            assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        store.close()


# -- status --check never creates nor migrates ---------------------------------------------
def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(url), encoding="utf-8")
    return path


def test_status_check_on_a_missing_database_is_critical_and_creates_nothing(
        tmp_path, monkeypatch):
    monkeypatch.delenv("MAILBOT_SECRET", raising=False)
    monkeypatch.delenv("MAILBOT_SECRET_FILE", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    state = tmp_path / "state"
    state.mkdir()
    path = _config(tmp_path, f"sqlite:///{state / 'typo.db'}")
    report = status_check(str(path), None, NOW)
    assert report.code == CRITICAL, report.line
    assert "no database at" in report.line and "typo.db" in report.line
    assert list(state.iterdir()) == []  # neither a database nor a secret


def _at_revision(url: str, revision: str) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_status_check_reports_an_unmigrated_store_and_leaves_it_as_it_is(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    scripts = ScriptDirectory(str(MIGRATIONS))
    previous = scripts.get_revision(head_revision()).down_revision
    assert isinstance(previous, str)
    _at_revision(url, previous)
    report = status_check(str(_config(tmp_path, url)), None, NOW)
    assert report.code == CRITICAL, report.line
    assert previous in report.line and "mailbot migrate" in report.line
    engine = create_engine(url)
    try:
        assert current_revision(engine) == previous  # a monitoring check migrates nothing
    finally:
        engine.dispose()


def newer_database(tmp_path: Path) -> str:
    """The URL of a SQLite store a newer release migrated (revision 9999_future)."""
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    Store.open(url, secret=TEST_SECRET).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    return url


def test_status_check_names_a_newer_release_s_revision(tmp_path):
    url = newer_database(tmp_path)
    report = status_check(str(_config(tmp_path, url)), None, NOW)
    assert report.code == CRITICAL and "9999_future" in report.line, report.line


def test_status_check_on_a_migrated_store_is_still_ok(tmp_path):
    url = f"sqlite:///{tmp_path / 'ok.db'}"
    Store.open(url, secret=TEST_SECRET).close()
    report = status_check(str(_config(tmp_path, url)), None, NOW)
    assert report.code == OK, report.line


# -- [retention] raw_days ------------------------------------------------------------------
@pytest.mark.parametrize("days", [36501, 1_000_000, 999_999_999])
def test_a_raw_days_beyond_the_calendar_is_a_configuration_error(tmp_path, days):
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(f"sqlite:///{tmp_path / 's.db'}",
                                  extra=f"[retention]\nraw_days = {days}\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[retention.raw_days\] must be at most 36500"):
        load_config(path)


def test_the_longest_raw_days_still_purges(tmp_path, capsys, monkeypatch):
    """A hundred years (the most allowed) gives a cut-off the calendar has: purge runs."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(url, extra="[retention]\nraw_days = 36500\n"),
                    encoding="utf-8")
    Store.open(url, secret=TEST_SECRET).close()
    monkeypatch.setenv("MAILBOT_SECRET", TEST_SECRET.decode())
    assert main(["purge", "--dry-run", "--config", str(path)]) == 0
    assert "would remove 0 spool file(s)" in capsys.readouterr().out


# -- hostile bytes in the text log ---------------------------------------------------------
@pytest.fixture
def text_log():
    root, ours = logging.getLogger(), logging.getLogger("mailbot")
    levels = root.level, ours.level
    stream = io.StringIO()
    logs.configure("text", "INFO", stream)
    yield stream
    restore_logging(levels)


def test_an_escape_sequence_in_a_recipient_never_reaches_the_text_log_raw(
        tmp_path, text_log):
    """A sender's RCPT TO carries ESC c (a terminal reset) and a bidi override; the listener
    refuses it and logs it: escaped, on one line."""
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}", secret=TEST_SECRET)
    listener = IntakeListener(ListenerSettings(port=0, mailboxes={
        "keiyaku@issuer.example.jp": "keiyaku"}), Ledger(store.engine, Spool(tmp_path / "sp")))
    listener.start()
    try:
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as client:
            client.ehlo()
            assert client.mail("keiri@maru.example.jp")[0] == 250
            client.send("RCPT TO:<evil\x1bc\u202e@issuer.example.jp>\r\n".encode())
            assert client.getreply()[0] == 550
    finally:
        listener.stop()
        store.close()
    refused = [line for line in text_log.getvalue().splitlines() if "refused recipient" in line]
    assert refused, text_log.getvalue()
    assert not any(c in text_log.getvalue() for c in "\x1b\u202e")
    assert "evil\\x1b" in refused[0]


# -- [metrics] listen vs the mailboxes' listeners ----------------------------------------
def _lmtp_config(tmp_path: Path, metrics_listen: str) -> Path:
    """The starter's LMTP mailbox on 127.0.0.1:8024, and `[metrics] listen`."""
    path = tmp_path / "mailbot.toml"
    text_ = issuer_config(f"sqlite:///{tmp_path / 's.db'}",
                          extra=f'[metrics]\nlisten = "{metrics_listen}"\n')
    assert 'listen = "127.0.0.1:0"' in text_
    path.write_text(text_.replace('listen = "127.0.0.1:0"', f'listen = "{LMTP}"', 1),
                    encoding="utf-8")
    return path


LMTP = "127.0.0.1:8024"


@pytest.mark.parametrize("host", ["same", "0.0.0.0"])
def test_metrics_on_a_mailbox_listener_s_port_is_a_configuration_error(tmp_path, host):
    """`config check` used to say ok; `mailbot run` then died on the second bind, exit 1,
    which the unit restarts every 5 s for ever."""
    clash = LMTP if host == "same" else f"{host}:8024"
    with pytest.raises(ConfigError, match=r"\[metrics.listen\] .* is also the listener of "
                                          r"mailbox 'keiyaku'"):
        load_config(_lmtp_config(tmp_path, clash))


def test_metrics_on_another_port_or_address_is_fine(tmp_path):
    assert load_config(_lmtp_config(tmp_path, "127.0.0.1:8025")).metrics.enabled
    assert load_config(_lmtp_config(tmp_path, "127.0.0.2:8024")).metrics.enabled
    assert load_config(_lmtp_config(tmp_path, "127.0.0.1:0")).metrics.enabled


# -- the secret `init` wrote, for commands run by hand -----------------------------------
def test_after_init_with_a_state_dir_import_by_hand_uses_init_s_secret(tmp_path, monkeypatch):
    """`init /etc/mailbot --state-dir /var/lib/mailbot`, then the admin imports the
    guarantees as the init's own "Next" step 4 says, with --config and nothing else: the key
    hashes must be made with the secret init wrote, which the service gets by LoadCredential.
    (Before [store] secret_file a new secret appeared beside the database and every imported
    hash was wrong for the service: each contractor's right key answered as wrong.)"""
    from .test_store_cli import HEADER, ROWS

    for name in ("MAILBOT_SECRET", "MAILBOT_SECRET_FILE", "CREDENTIALS_DIRECTORY",
                 "MAILBOT_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    etc, state = tmp_path / "etc", tmp_path / "state"
    state.mkdir()
    assert main(["init", str(etc), "--state-dir", str(state)]) == 0
    csv = tmp_path / "export.csv"
    csv.write_bytes((HEADER + ROWS).encode("cp932"))
    assert main(["store", "import", "--config", str(etc / "mailbot.toml"), str(csv)]) == 0
    assert not (state / "mailbot.secret").exists()


# -- a key written into the Subject --------------------------------------------------------
@pytest.fixture
def retention_setup(store, store_url, tmp_path, sink):
    """tests/test_retention.py's setup."""
    return retention_world(store, store_url, tmp_path, sink)


def test_a_key_in_the_subject_does_not_outlive_the_purge(retention_setup):
    """Contractors do write 「認証キー …」 into the Subject. After the real pipeline decided
    the mail, its reply went out and raw_days passed, no table may hold the key in clear
    (docs/security.md: "the store database, elsewhere: nothing")."""
    config, store, ledger = retention_setup
    message = message_from_bytes(SAMPLE.data, policy=SMTP)
    del message["Subject"]
    message["Subject"] = f"保証証書送付 保証契約番号 {NOTICE['guarantee_number']} 認証キー " \
                         f"{NOTICE['auth_key']}"
    ledger.receive("keiyaku", message.as_bytes(), now=OLD)
    assert Pipeline(config, store, ledger, Reader(), clock=lambda: OLD).process_one()
    outgoing = Outgoing(config, store)
    assert outgoing.queue(OLD) == 1
    assert outgoing.outbox.flush(OLD).sent
    purge(config, store, NOW)
    found = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    shown = value.decode("utf-8", "replace") if isinstance(value, bytes) \
                        else str(value)
                    if NOTICE["auth_key"] in shown:
                        found.append(f"{table.name}.{column}")
    assert found == [], found


# -- a database from a newer release, after going back ------------------------------------
def test_run_on_a_newer_release_s_database_is_a_usage_error_not_a_restart_loop(tmp_path):
    """After a rollback to the older wheel without restoring the database: `mailbot run` used
    to die with alembic's traceback and exit 1, which Restart=on-failure repeats every 5 s;
    exit 2 is the unit's RestartPreventExitStatus."""
    url = newer_database(tmp_path)
    path = _config(tmp_path, url)
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    result = subprocess.run([sys.executable, "-m", "mailbot.cli", "run", "--config", str(path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "9999_future" in result.stderr and "newer release" in result.stderr
    assert "Traceback" not in result.stderr


# -- a database error's text -----------------------------------------------------------------
def test_a_store_error_never_carries_the_statement_s_parameters(tmp_path):
    """SQLAlchemy puts a failed statement's parameters into the exception's text, which
    every `log.exception` outside the SMTP listener writes out whole (the pipeline loop, the
    outbox run): a Subject with a key, a rendered reply. The store's engine hides them."""
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}", secret=TEST_SECRET)
    try:
        with store.engine.begin() as conn:  # a real failure of the database: a trigger
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON ledger "
                              "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END"))
        raw = "Subject: 認証キー Z28YUEAJ38ux\r\n\r\nx\r\n".encode()
        with pytest.raises(Exception) as caught:
            Ledger(store.engine, Spool(tmp_path / "spool")).receive("keiyaku", raw)
        assert "disk quota exceeded" in str(caught.value)
        assert "Z28YUEAJ38ux" not in str(caught.value)
    finally:
        store.close()


# -- init over an existing store ------------------------------------------------------------
def test_init_refuses_a_state_dir_that_already_holds_a_store(tmp_path, capsys):
    """A second `init` for an installation whose database exists (a new /etc folder, or the
    secret moved away) wrote a new secret the unit would hand the service: every stored key
    hash would then be wrong, each contractor's right key answered as a mismatch."""
    state = tmp_path / "state"
    assert main(["init", str(tmp_path / "first"), "--state-dir", str(state)]) == 0
    state.mkdir()
    assert main(["migrate", "--config", str(tmp_path / "first" / "mailbot.toml")]) == 0
    capsys.readouterr()
    assert main(["init", str(tmp_path / "second"), "--state-dir", str(state)]) == 2
    assert f"{state / 'mailbot.db'} already exists" in capsys.readouterr().err
    assert not (tmp_path / "second").exists()

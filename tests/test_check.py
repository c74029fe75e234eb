"""`mailbot status --check` on SQLite and PostgreSQL: each condition gives its Nagios code
(0 OK, 1 WARNING, 2 CRITICAL) and one summary line; an unreachable store is CRITICAL. The
check's clock is injected (`now`); sync states are written by the ledger on the wall clock,
so those tests count their minutes from the moment they wrote them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from mailbot.checks import CRITICAL, OK, WARNING, check
from mailbot.config import CheckConfig, ConfigError, load_config
from mailbot.ledger import MAX_ATTEMPTS, Ledger, Spool
from mailbot.outbox import Outbox, SendWindow

from .configs import issuer_config
from .conftest import TEST_SECRET
from .servers import free_port
from .test_retention import staff_mail

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
DEFAULTS = CheckConfig()


def mail(n: int) -> bytes:
    return (f"From: a@maru.example.jp\r\nMessage-ID: <c{n}@maru.example.jp>\r\nSubject: c{n}"
            "\r\n\r\nhello\r\n").encode()


@pytest.fixture
def ledger(store, tmp_path):
    return Ledger(store.engine, Spool(tmp_path / "spool"))


def checked(store, now=NOW, thresholds=DEFAULTS, sources=None):
    with store.engine.connect() as conn:
        return check(conn, thresholds, now, sources)


def quarantine(ledger: Ledger, n: int) -> None:
    row = ledger.receive("keiyaku", mail(n), now=NOW).id
    for _ in range(MAX_ATTEMPTS):
        entry = ledger.claim(now=NOW)
        assert entry.id == row
        ledger.fail(row, "Traceback: boom", attempt=entry.attempts)


def test_nothing_wrong_is_ok(store, ledger):
    report = checked(store)
    assert report.code == OK
    assert report.line == ("MAILBOT OK - oldest waiting 0 min; quarantined 0; failed mail 0; "
                           "sources down 0 | waiting_minutes=0;30;120 quarantined=0;1;10 "
                           "failed=0;1;5 sources_down=0")


def test_the_oldest_waiting_message(store, ledger):
    row = ledger.receive("keiyaku", mail(1), now=NOW - timedelta(minutes=42)).id
    assert checked(store, NOW - timedelta(minutes=20)).code == OK
    report = checked(store)
    assert report.code == WARNING
    assert report.line.startswith("MAILBOT WARNING - oldest waiting 42 min (warn 30); "
                                  "quarantined 0;")
    assert checked(store, NOW + timedelta(hours=2)).line.startswith(
        "MAILBOT CRITICAL - oldest waiting 162 min (crit 120)")
    assert ledger.claim(now=NOW).id == row  # in hand (processing) still waits
    assert checked(store).code == WARNING
    ledger.decide(row, {"status": "recorded"}, None, None, now=NOW)
    assert checked(store, NOW + timedelta(days=1)).code == OK


def test_quarantined_messages(store, ledger):
    quarantine(ledger, 1)
    report = checked(store)
    assert report.code == WARNING and "quarantined 1 (warn 1)" in report.line
    assert "oldest waiting 0 min" in report.line  # a quarantined row no longer waits
    strict = CheckConfig(quarantined_warn=1, quarantined_crit=2)
    assert checked(store, thresholds=strict).code == WARNING
    quarantine(ledger, 2)
    report = checked(store, thresholds=strict)
    assert report.code == CRITICAL and "quarantined 2 (crit 2)" in report.line


def test_failed_outgoing_mail(store, sink):
    outbox = Outbox(store.engine, sink.settings, SendWindow())
    raw, mid = staff_mail("一覧")
    row = outbox.queue("digest", ["staff@issuer.example.jp"], raw, mid, "一覧", NOW,
                       immediate=True)
    sink.refuse("550 5.1.1 No such user", 1)
    assert outbox.flush(NOW).failed == [row]
    report = checked(store)
    assert report.code == WARNING and "failed mail 1 (warn 1)" in report.line
    assert checked(store, thresholds=CheckConfig(failed_crit=1)).code == CRITICAL
    outbox.cancel(row)
    assert checked(store).code == OK


def test_a_source_down(store, ledger):
    ledger.set_mailbox_state("keiyaku", 7, 10)  # a good sync …
    synced = datetime.now(UTC)
    assert checked(store, synced + timedelta(hours=5)).code == OK  # quiet, not down
    ledger.record_error("keiyaku", "imap.issuer.example.jp: connection refused")  # … then errors
    assert checked(store, synced + timedelta(minutes=5)).code == OK  # not for long yet
    report = checked(store, synced + timedelta(minutes=20, seconds=30))
    assert report.code == WARNING
    assert "sources down 1, source keiyaku down 20 min (warn 15)" in report.line
    assert checked(store, synced + timedelta(minutes=61)).code == CRITICAL
    # A mailbox no longer configured is not watched.
    assert checked(store, synced + timedelta(minutes=61), sources={"other"}).code == OK
    ledger.set_mailbox_state("keiyaku", 7, 11)  # it syncs again
    assert checked(store, synced + timedelta(minutes=61)).code == OK


def test_a_source_that_never_synced(store, ledger):
    ledger.record_error("keiyaku", "imap.issuer.example.jp: authentication failed")
    report = checked(store, datetime.now(UTC))
    assert report.code == WARNING and "source keiyaku never synced" in report.line


def test_thresholds_come_from_check(tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text("[check]\nwaiting_warn_minutes = 60\nwaiting_crit_minutes = 90\n"
                    "failed_crit = 9\n", encoding="utf-8")
    config = load_config(path)
    assert (config.check.waiting_warn_minutes, config.check.waiting_crit_minutes) == (60, 90)
    assert (config.check.failed_warn, config.check.failed_crit) == (1, 9)
    path.write_text("[check]\nquarantined_warn = 5\nquarantined_crit = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[check.quarantined_crit\] must be at least"):
        load_config(path)
    path.write_text("[check]\nwaiting_minutes = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'waiting_minutes'"):
        load_config(path)


def _status_check(path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    return subprocess.run([sys.executable, "-m", "mailbot.cli", "status", "--check", "--config",
                           str(path), *extra], capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_command_exit_codes(store, store_url, ledger, tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(store_url), encoding="utf-8")
    ok = _status_check(path)
    assert (ok.returncode, ok.stdout.splitlines()[0][:13]) == (0, "MAILBOT OK - "), ok.stderr
    assert len(ok.stdout.splitlines()) == 1
    quarantine(ledger, 1)
    warning = _status_check(path)
    assert warning.returncode == 1, warning.stderr
    assert warning.stdout.startswith("MAILBOT WARNING - ") and "quarantined 1" in warning.stdout
    path.write_text(issuer_config(store_url, extra="[check]\nquarantined_crit = 1\n"),
                    encoding="utf-8")
    critical = _status_check(path)
    assert critical.returncode == 2 and critical.stdout.startswith("MAILBOT CRITICAL - ")


@pytest.mark.parametrize("url", [
    f"postgresql+psycopg://mailbot@127.0.0.1:{free_port()}/mailbot",
    "sqlite:////nonexistent-folder-of-the-test/store.db",
])
def test_an_unreachable_store_is_critical(tmp_path, url):
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(url), encoding="utf-8")
    result = _status_check(path)
    assert result.returncode == 2, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("MAILBOT CRITICAL - store unreachable: ")


def test_a_broken_configuration_is_critical(tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text("[check]\nfailed_warn = 0\n", encoding="utf-8")
    result = _status_check(path)
    assert result.returncode == 2
    assert result.stdout.startswith("MAILBOT CRITICAL - configuration: ")
    assert "[check.failed_warn] must be a whole number" in result.stdout


def test_cluster_problems_warn_a_mailbox_no_live_node_watches(store, store_url, tmp_path):
    """A node is alive but no node holds the IMAP mailbox's lease (its watcher died with the
    lease lost): `status --check` says WARNING and names it; once held, OK again."""
    from mailbot.cluster import Leases

    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(store_url, imap_port=free_port()), encoding="utf-8")
    node = Leases(store.engine, "n1#0001", 60)
    assert node.hold("node:n1", "host-a:/srv/a") is not None
    unwatched = _status_check(path)
    assert unwatched.returncode == 1, unwatched.stdout + unwatched.stderr
    assert "cluster problems 1: IMAP mailbox keiyaku is watched by no live node" \
        in unwatched.stdout
    assert "cluster_problems=1" in unwatched.stdout
    assert node.hold("mailbox:keiyaku") is not None
    watched = _status_check(path)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "cluster" not in watched.stdout

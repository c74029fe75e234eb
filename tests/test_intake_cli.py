"""`mailbot status` and `mailbot quarantine` over a real ledger (SQLite), as an admin uses them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.store import Store
from parsers import Reader

from .configs import issuer_config
from .conftest import TEST_SECRET

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

RAW = b"From: a@maru.example.jp\r\nMessage-ID: <q@maru.example.jp>\r\nSubject: test\r\n\r\nhi\r\n"


def mailbot(*args):
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    return subprocess.run([sys.executable, "-m", "mailbot.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture
def setup(tmp_path):
    """A config with one LMTP issuer mailbox, loaded, and its store opened."""
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(f"sqlite:///{tmp_path / 's.db'}", tmp_path / "spool"),
                    encoding="utf-8")
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}", secret=TEST_SECRET)
    yield path, load_config(path), store
    store.close()


def test_a_message_that_always_crashes_is_quarantined_then_retried(setup):
    path, config, store = setup
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    # A message for a mailbox that is no longer configured fails in the pipeline every time.
    row = ledger.receive("retired-mailbox", RAW).id
    ledger.receive("keiyaku", RAW.replace(b"<q@", b"<ok@"))
    pipeline = Pipeline(config, store, ledger, Reader())
    while pipeline.process_one():
        pass
    assert ledger.get(row).state == "quarantined" and ledger.get(row).attempts == 3

    status = mailbot("status", "--config", str(path))
    assert status.returncode == 0, status.stderr
    # Nothing is "backlog 0" while a reply waits to be rendered or a message is quarantined.
    assert "keiyaku: decided 1; backlog 1 (waiting: replies to render 1)" in status.stdout
    assert "retired-mailbox: quarantined 1; backlog 1 (stuck: quarantined 1)" in status.stdout
    assert "total: backlog 2 (waiting: replies to render 1; stuck: quarantined 1)" \
        in status.stdout

    listing = mailbot("quarantine", "list", "--config", str(path))
    assert listing.stdout.startswith(f"{row}\tretired-mailbox\t")
    shown = mailbot("quarantine", "show", str(row), "--config", str(path))
    assert "RuntimeError: mailbox 'retired-mailbox' is no longer in the configuration" in shown.stdout
    assert mailbot("quarantine", "retry", str(row), "--config", str(path)).returncode == 0
    assert ledger.get(row).state == "received" and ledger.get(row).attempts == 0
    assert mailbot("quarantine", "show", "999", "--config", str(path)).returncode == 1


def test_status_shows_the_last_error_of_a_mailbox(setup):
    path, config, store = setup
    Ledger(store.engine, Spool(config.spool_dir)).record_error(
        "keiyaku", "connection refused by 127.0.0.1:143")
    run = mailbot("status", "--config", str(path), "--json")
    assert '"last_error": "connection refused by 127.0.0.1:143"' in run.stdout


def test_one_daemon_per_spool(setup):
    from mailbot.daemon import Daemon
    from mailbot.errors import UsageError

    _path, config, store = setup
    first, second = Daemon(config, store, workers=1), Daemon(config, store, workers=1)
    first.start()
    try:
        with pytest.raises(UsageError, match="another mailbot run"):
            second._lock_spool()
    finally:
        first.shutdown()
        second.shutdown()
    third = Daemon(config, store, workers=1)
    third._lock_spool()  # released by the first one's shutdown
    third.shutdown()


def test_status_shows_which_node_holds_what_and_claims_past_their_expiry(setup):
    import json
    from datetime import UTC, datetime

    from sqlalchemy import update

    from mailbot.cluster import Leases
    from mailbot.store.schema import leases, ledger

    path, config, store = setup
    book = Ledger(store.engine, Spool(config.spool_dir))
    n1 = Leases(store.engine, "n1#aaaa", 30)
    assert n1.hold("node:n1") and n1.hold("mailbox:keiyaku")
    assert n1.start_tick("job:digest", "d2026-12-01") is not None
    book.receive("keiyaku", RAW)
    book.claim(now=datetime.now(UTC), holder="n2#dead", claim_seconds=60)
    with store.engine.begin() as conn:  # n2 stopped long ago: its claim ran out
        conn.execute(update(ledger).values(claim_expires=datetime(2000, 1, 1, tzinfo=UTC)))
    status = mailbot("status", "--config", str(path))
    assert status.returncode == 0, status.stderr
    assert "  mailbox:keiyaku: n1#aaaa (until " in status.stdout
    assert "  job:digest: n1#aaaa (until " in status.stdout and "run d2026-12-01 running" \
        in status.stdout
    assert "PROBLEM: 1 message(s) claimed past their expiry" in status.stdout
    report = json.loads(mailbot("status", "--config", str(path), "--json").stdout)["(cluster)"]
    assert {(lease["lease"], lease["node"]) for lease in report["leases"]} == {
        ("node:n1", "n1"), ("mailbox:keiyaku", "n1"), ("job:digest", "n1")}
    assert report["expired_claims"] == 1
    with store.engine.begin() as conn:  # n1 dies too: nobody is left
        conn.execute(update(leases).values(expires_at=datetime(2000, 1, 1, tzinfo=UTC)))
    assert "expired" in mailbot("status", "--config", str(path)).stdout

"""Retention on SQLite and PostgreSQL: `[retention] raw_days` purges the spool files of
decided mail and the bodies of sent mail, never a quarantined or undecided message's file,
nor a file an ineligible copy shares; dry runs remove nothing; rows and decisions stay.
The clock is injected everywhere (`NOW`), except in the command-line test, whose rows are
dated relative to the wall clock."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, insert, select

from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import MAX_ATTEMPTS, Ledger, RawPurged, Spool
from mailbot.ledger import purge as ledger_purge
from mailbot.outgoing import Outgoing, outbox_for
from mailbot.retention import purge
from mailbot.samples.catalog import all_samples
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.migrate import MIGRATIONS
from mailbot.store.schema import ledger as ledger_table
from mailbot.store.schema import outbox as outbox_table
from parsers import Reader

from .configs import issuer_config
from .conftest import TEST_SECRET

NOW = datetime(2026, 10, 1, 3, 0, tzinfo=UTC)  # the purge's clock
OLD = NOW - timedelta(days=100)  # older than raw_days = 90
RECENT = NOW - timedelta(days=10)
SAMPLE = all_samples(["ejcs_cid"])[0]
NOTICE = SAMPLE.expected["notices"][0]


def mail(n: int, body: str = "") -> bytes:
    return (f"From: a@maru.example.jp\r\nMessage-ID: <r{n}@maru.example.jp>\r\nSubject: t{n}\r\n"
            f"\r\n認証キー Z28YUEAJ38ux {body}\r\n").encode()


def staff_mail(subject: str) -> tuple[bytes, str]:
    message_id = make_msgid(domain="issuer.example.jp")
    msg = EmailMessage()
    msg["From"] = "keiyaku@issuer.example.jp"
    msg["To"] = "staff@issuer.example.jp"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("〇〇建設 1件\n")
    return msg.as_bytes(policy=SMTP), message_id


@pytest.fixture
def setup(store, store_url, tmp_path, sink):
    return retention_world(store, store_url, tmp_path, sink)


def retention_world(store, store_url, tmp_path, sink):  # noqa: ANN001
    """Replies sent at once through `sink`, raw_days 90, the sample notice's guarantee in
    the store: (config, store, ledger)."""
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(store_url, extra=(
        f'[smtp]\nhost = "127.0.0.1"\nport = {sink.settings.port}\ntls = "none"\n'
        'from = "keiyaku@issuer.example.jp"\n'
        '[send_window]\nimmediate = ["confirmation", "discrepancy"]\n'
        '[digest]\nenabled = false\n[retention]\nraw_days = 90\n')), encoding="utf-8")
    config = load_config(path)
    store.apply([GuaranteeEvent(
        NOTICE["guarantee_number"], "new", NOTICE["auth_key"], kind=NOTICE["kind"],
        issuer="〇〇市", contractor=NOTICE["contractor"], project_name=NOTICE["project_name"],
        source="t")])
    return config, store, Ledger(store.engine, Spool(config.spool_dir))


def decided(ledger: Ledger, mailbox: str, raw: bytes, at: datetime) -> int:
    row = ledger.receive(mailbox, raw, now=at).id
    assert ledger.claim(now=at).id == row
    ledger.decide(row, {"status": "recorded", "notices": []}, None, None, now=at)
    return row


def build(setup):
    """Rows in every state, old and recent; returns their ids and spool names."""
    config, store, ledger = setup
    ids: dict[str, int] = {}
    # A notice decided by the real pipeline, its reply sent: the key is in clear in both.
    ids["answered"] = ledger.receive("keiyaku", SAMPLE.data, now=OLD).id
    assert Pipeline(config, store, ledger, Reader(), clock=lambda: OLD).process_one()
    outgoing = Outgoing(config, store)
    assert outgoing.queue(OLD) == 1
    assert outgoing.outbox.flush(OLD).sent
    ids["plain"] = decided(ledger, "keiyaku", mail(1), OLD)
    # One file, two eligible rows (the same mail in two mailboxes): it goes.
    ids["both-a"] = decided(ledger, "keiyaku", mail(2), OLD)
    ids["both-b"] = decided(ledger, "other", mail(2), OLD)
    # Quarantined, and its copy decided in another mailbox: the shared file stays.
    ids["quarantined"] = ledger.receive("keiyaku", mail(3), now=OLD).id
    for _ in range(MAX_ATTEMPTS):
        entry = ledger.claim(now=OLD)
        assert entry.id == ids["quarantined"]
        ledger.fail(entry.id, "Traceback: boom", attempt=entry.attempts)
    ids["copy-of-quarantined"] = decided(ledger, "other", mail(3), OLD)
    ids["recent"] = decided(ledger, "keiyaku", mail(4), RECENT)
    ids["processing"] = ledger.receive("keiyaku", mail(5), now=OLD).id
    assert ledger.claim(now=OLD).id == ids["processing"]
    ids["received"] = ledger.receive("keiyaku", mail(6), now=OLD).id
    # Outgoing mail: sent long ago, sent lately, still queued.
    outbox = outbox_for(config, store)
    raw, mid = staff_mail("古い警告")
    old_alert = outbox.queue("alert", ["staff@issuer.example.jp"], raw, mid, "古い警告", OLD,
                             immediate=True)
    assert outbox.flush(OLD).sent == [old_alert]
    raw, mid = staff_mail("新しい警告")
    new_alert = outbox.queue("alert", ["staff@issuer.example.jp"], raw, mid, "新しい警告",
                             RECENT, immediate=True)
    assert outbox.flush(RECENT).sent == [new_alert]
    raw, mid = staff_mail("未送信")
    queued = outbox.queue("alert", ["staff@issuer.example.jp"], raw, mid, "未送信", OLD)
    names = {k: ledger.get(v).spool_name for k, v in ids.items()}
    return ids, names, {"old": old_alert, "new": new_alert, "queued": queued}


def bodies(store) -> dict[int, bytes | None]:
    with store.engine.connect() as conn:
        return {r.id: r.raw for r in conn.execute(select(outbox_table.c.id, outbox_table.c.raw))}


def test_purge_removes_exactly_the_eligible_files_and_bodies(setup):
    config, store, ledger = setup
    ids, names, alerts = build(setup)
    spool = ledger.spool
    before = spool.names()
    assert sorted(set(names.values())) == before  # every row's file is there
    with store.engine.connect() as conn:
        reply = conn.execute(select(outbox_table.c.id).where(
            outbox_table.c.ledger_id == ids["answered"])).scalar_one()
    bodies_before = bodies(store)

    # A dry run lists what would go and removes nothing.
    dry = purge(config, store, NOW, dry_run=True)
    assert spool.names() == before and bodies(store) == bodies_before
    eligible = {names["answered"], names["plain"], names["both-a"]}
    assert {f.name for f in dry.files} == eligible
    assert {b.id for b in dry.bodies} == {reply, alerts["old"]}
    assert all(ledger.get(i).purged_at is None for i in ids.values())
    assert dry.lines()[-1].startswith("would remove 3 spool file(s) and 2 outbox body(ies)")

    report = purge(config, store, NOW)
    after = spool.names()
    assert after == sorted(set(before) - eligible)
    for kept in ("quarantined", "copy-of-quarantined", "recent", "processing", "received"):
        assert names[kept] in after, kept
        assert ledger.get(ids[kept]).purged_at is None, kept
    for gone in ("answered", "plain", "both-a", "both-b"):
        entry = ledger.get(ids[gone])
        assert entry.purged_at == NOW and entry.state in ("decided", "replied"), gone
        assert entry.decision  # the decision stays
    assert {f.name for f in report.files} == eligible and report.kept == []
    assert report.lines()[-1].startswith("removed 3 spool file(s) and 2 outbox body(ies)")

    # The decision of the notice is kept, its key masked; the raw mail says it is gone.
    answered = ledger.get(ids["answered"])
    assert answered.record["notices"][0]["guarantee_number"] == NOTICE["guarantee_number"]
    assert NOTICE["auth_key"] not in answered.decision
    assert NOTICE["auth_key"][:4] + "*" in answered.decision
    with pytest.raises(RawPurged, match="purged on 2026-10-01"):
        ledger.raw(answered)
    assert ledger.raw(ledger.get(ids["quarantined"])) == mail(3)

    # Outbox: the old sent bodies are gone, the rows stay; recent and queued ones keep theirs.
    after_bodies = bodies(store)
    assert after_bodies[reply] is None and after_bodies[alerts["old"]] is None
    assert after_bodies[alerts["new"]] == bodies_before[alerts["new"]]
    assert after_bodies[alerts["queued"]] == bodies_before[alerts["queued"]]
    rows = {r.id: r for r in outbox_for(config, store).rows()}
    assert rows[reply].state == "sent" and rows[reply].purged_at == NOW
    assert rows[alerts["new"]].purged_at is None

    # A second run finds nothing more; later, the recent mail's turn comes.
    again = purge(config, store, NOW)
    assert again.files == [] and again.bodies == []
    later = purge(config, store, RECENT + timedelta(days=91))
    assert {f.name for f in later.files} == {names["recent"]}
    assert {b.id for b in later.bodies} == {alerts["new"]}
    assert names["quarantined"] in spool.names() and names["received"] in spool.names()


def test_a_file_taken_by_a_new_row_meanwhile_stays(setup):
    config, store, ledger = setup
    row = decided(ledger, "keiyaku", mail(7), OLD)
    cutoff = NOW - timedelta(days=90)
    with store.engine.connect() as conn:
        [file] = ledger_purge.purgeable(conn, cutoff)
    # The same bytes arrive again (another mailbox) before the purge gets to the file.
    again = ledger.receive("other", mail(7), now=NOW).id
    assert not ledger_purge.purge_file(store.engine, ledger.spool, file, cutoff, NOW)
    assert ledger.spool.names() == [file.name]
    assert ledger.get(row).purged_at is None and ledger.raw(ledger.get(again)) == mail(7)


class RacingSpool(Spool):
    """A spool whose file a purge renames aside just after `put` found it there."""

    aside = None

    def put(self, raw: bytes) -> tuple[str, str]:
        digest, name = super().put(raw)
        self.aside = self.withdraw(name)
        return digest, name


def test_a_receive_racing_a_purge_keeps_its_file(setup):
    config, store, ledger = setup
    decided(ledger, "keiyaku", mail(8), OLD)
    racing = Ledger(store.engine, RacingSpool(config.spool_dir))
    receipt = racing.receive("other", mail(8), now=NOW)  # put found the file; then it went
    assert racing.spool.aside is not None
    racing.spool.bury(racing.spool.aside)  # the purge deletes what it renamed aside
    assert ledger.raw(ledger.get(receipt.id)) == mail(8)  # written again after the commit


def test_spool_files_and_folders_are_private(tmp_path):
    old = os.umask(0o022)
    try:
        loose = tmp_path / "spool"
        (loose / "ab").mkdir(parents=True, mode=0o755)
        spool = Spool(loose)  # an older release's folders are made private
        _digest, name = spool.put(mail(9))
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(loose) == 0o700 and mode(loose / "ab") == 0o700
    assert mode(spool.path(name).parent) == 0o700 and mode(spool.path(name)) == 0o600


def test_the_purge_command_and_its_dry_run(store_url, tmp_path):
    """`mailbot purge` on the wall clock: a message of 100 days ago goes, one of today stays."""
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(store_url), encoding="utf-8")
    config = load_config(path)
    store = Store.open(store_url, secret=TEST_SECRET)
    try:
        ledger = Ledger(store.engine, Spool(config.spool_dir))
        now = datetime.now(UTC)
        old = decided(ledger, "keiyaku", mail(10), now - timedelta(days=100))
        decided(ledger, "keiyaku", mail(11), now)
        old_name = ledger.get(old).spool_name
        before = ledger.spool.names()
    finally:
        store.close()
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mailbot.cli", "purge", "--config",
                               str(path), *extra], capture_output=True, text=True, env=env,
                              timeout=120)

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove spool {old_name}" in dry.stdout
    assert "would remove 1 spool file(s) and 0 outbox body(ies)" in dry.stdout
    assert Spool(config.spool_dir).names() == before
    done = run()
    assert done.returncode == 0, done.stderr
    assert f"removed spool {old_name}" in done.stdout and "removed 1 spool file(s)" in done.stdout
    assert Spool(config.spool_dir).names() == sorted(set(before) - {old_name})


def test_the_migration_lets_a_sent_body_be_purged(store_url, tmp_path):
    """A store made before 0007_retention, with an outbox row, upgrades and keeps the row."""
    engine = create_engine(store_url)
    alembic = AlembicConfig()
    alembic.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        alembic.attributes["connection"] = conn
        command.upgrade(alembic, "0006_reply_errors")
    with engine.begin() as conn:
        # Only the columns given are written: the table has no purged_at yet.
        conn.execute(insert(outbox_table).values(
            kind="alert", message_id="<m@issuer.example.jp>", to_addrs="s@issuer.example.jp",
            subject="s", raw=b"body", state="sent", immediate=False, attempts=1,
            next_attempt_at=OLD, deadline=OLD, created_at=OLD, sent_at=OLD))
    engine.dispose()
    store = Store.open(store_url, secret=TEST_SECRET)
    try:
        with store.engine.begin() as conn:
            assert conn.execute(select(outbox_table.c.raw)).scalar_one() == b"body"
            assert conn.execute(select(ledger_table.c.purged_at)).all() == []
        config = load_config(None)
        report = purge(config, store, NOW, spool=Spool(tmp_path / "spool"))
        assert len(report.bodies) == 1
        with store.engine.connect() as conn:
            row = conn.execute(select(outbox_table.c.raw, outbox_table.c.purged_at)).one()
        assert row.raw is None and row.purged_at is not None
    finally:
        store.close()


def test_the_daemon_purges_daily(setup, caplog):
    """`mailbot run` schedules the purge at `[retention] at`; the job purges on the daemon's
    clock and logs what it removed; a failure is logged, not raised."""
    from mailbot.daemon import Daemon
    from mailbot.retention import daily_job

    config, store, ledger = setup
    row = decided(ledger, "keiyaku", mail(12), OLD)
    daemon = Daemon(config, store, workers=1, clock=lambda: NOW)
    try:
        daemon.start()
        job = daemon._scheduler.get_job("purge")
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("3", "30")
        caplog.set_level("INFO", logger="mailbot.retention")
        job.func()
    finally:
        daemon.shutdown()
    assert ledger.get(row).purged_at == NOW and ledger.spool.names() == []
    assert "purged 1 spool file(s) and 0 outbox body(ies)" in caplog.text
    shutil.rmtree(config.spool_dir)  # the spool folder is gone, a file in its place: the next run
    config.spool_dir.write_bytes(b"")  # logs its failure and returns
    daily_job(config, store, lambda: NOW)()
    assert "the retention purge failed" in caplog.text


def test_a_new_sqlite_store_file_is_private(tmp_path):
    """The SQLite file holds the outbox bodies (notices with keys in clear): 0600 whatever
    the umask, and so are the journal files SQLite makes beside it."""
    import os
    import stat

    from mailbot.store import Store

    old = os.umask(0o022)
    try:
        store = Store.open(f"sqlite:///{tmp_path / 'new.db'}", secret=b"x" * 32)
        with store.engine.begin() as conn:  # a write makes the -wal file
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
        files = [p for p in tmp_path.iterdir() if p.name.startswith("new.db")]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
        store.close()
    finally:
        os.umask(old)
    assert "new.db" in modes and all(mode == 0o600 for mode in modes.values()), modes

"""Raw mail in PostgreSQL's `raw_messages` table (`DbSpool`): durable and deduplicated,
readable from another node, purged race-free like the file spool, older rows' files still
read, purged and copied in by `mailbot migrate`."""

from __future__ import annotations

import itertools
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select

from mailbot.config import load_config
from mailbot.ledger import DbSpool, Ledger, Spool, spool_for
from mailbot.ledger import purge as ledger_purge
from mailbot.store import Store
from mailbot.store.schema import raw_messages

from . import test_retention as retention
from .configs import issuer_config
from .conftest import TEST_SECRET
from .servers import create_database

_names = itertools.count(1)
RAW = b"From: a@maru.example.jp\r\nSubject: t\r\n\r\n\xe8\xaa\x8d\xe8\xa8\xbc Z28YUEAJ38ux\r\n"


@pytest.fixture
def pg_url(pg_server):
    return create_database(pg_server, f"raw{next(_names)}")


@pytest.fixture
def pg_store(pg_url):
    opened = Store.open(pg_url, secret=TEST_SECRET)
    yield opened
    opened.close()


@pytest.fixture
def db_spool(pg_store, tmp_path):
    return DbSpool(pg_store.engine, tmp_path / "spool")


def rows(engine) -> dict[str, bytes]:
    with engine.connect() as conn:
        return {r.name: bytes(r.raw) for r in conn.execute(select(raw_messages))}


def test_put_read_keep_and_dedupe(db_spool, pg_store, tmp_path):
    digest, name = db_spool.put(RAW)
    assert digest == Spool.digest(RAW) and name == f"{digest[:2]}/{digest}.eml"
    assert db_spool.put(RAW) == (digest, name)  # the same bytes twice: one row
    assert rows(pg_store.engine) == {name: RAW} and db_spool.names() == [name]
    assert db_spool.read(name) == RAW
    with pg_store.engine.connect() as conn:
        assert conn.execute(select(raw_messages.c.size)).scalar_one() == len(RAW)
    db_spool.keep(name, RAW)  # there: nothing to do
    with pg_store.engine.begin() as conn:
        conn.execute(raw_messages.delete())
    db_spool.keep(name, RAW)  # gone since `put`: stored again
    assert rows(pg_store.engine) == {name: RAW}
    # Nothing on disk but the (private) folder the daemon's lock lives in.
    folder = tmp_path / "spool"
    assert list(folder.iterdir()) == [] and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert "raw_messages" in db_spool.location(name)
    with pytest.raises(FileNotFoundError, match="neither in the raw_messages table"):
        db_spool.read("00/" + "0" * 64 + ".eml")


def test_another_node_reads_what_one_received(pg_url, pg_store, tmp_path):
    """Two engines, two spool folders (two hosts): the second reads the first one's mail."""
    config = load_config_for(pg_url, tmp_path / "a")
    here = Ledger(pg_store.engine, spool_for(config, pg_store))
    assert isinstance(here.spool, DbSpool)
    receipt = here.receive("keiyaku", RAW)
    assert not [p for p in (tmp_path / "a" / "spool").rglob("*") if p.name != ".mailbot-run.lock"]
    other = create_engine(pg_url, hide_parameters=True)
    try:
        there = Ledger(other, DbSpool(other, tmp_path / "b" / "spool"))
        assert there.raw(there.get(receipt.id)) == RAW
    finally:
        other.dispose()


def load_config_for(url: str, folder):  # noqa: ANN001, ANN201
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mailbot.toml"
    path.write_text(issuer_config(url, folder / "spool"), encoding="utf-8")
    return load_config(path)


def test_spool_for_sqlite_is_the_folder(sqlite_store, tmp_path):
    config = load_config_for(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    spool = spool_for(config, sqlite_store)
    assert type(spool) is Spool and spool.folder == config.spool_dir


class RacingDbSpool(DbSpool):
    """A purge takes the row aside just after `put` stored (or found) it."""

    aside = None

    def put(self, raw: bytes) -> tuple[str, str]:
        digest, name = super().put(raw)
        self.aside = self.withdraw(name)
        return digest, name


def test_a_receive_racing_a_purge_keeps_its_row(pg_store, tmp_path):
    ledger = Ledger(pg_store.engine, DbSpool(pg_store.engine, tmp_path / "spool"))
    retention.decided(ledger, "keiyaku", RAW, retention.OLD)
    racing = Ledger(pg_store.engine, RacingDbSpool(pg_store.engine, tmp_path / "spool"))
    receipt = racing.receive("other", RAW, now=retention.NOW)  # put found the row; then it went
    assert racing.spool.aside is not None and racing.spool.aside.row is not None
    racing.spool.bury(racing.spool.aside)  # the purge deletes what it took aside
    assert ledger.raw(ledger.get(receipt.id)) == RAW  # stored again after the commit
    assert list(rows(pg_store.engine)) == [ledger.get(receipt.id).spool_name]


def test_put_back_when_the_name_was_stored_again(db_spool, pg_store):
    _digest, name = db_spool.put(RAW)
    aside = db_spool.withdraw(name)
    assert aside is not None and db_spool.names() == []
    assert db_spool.read(name) == RAW  # readable while the purge has it aside
    db_spool.put(RAW)  # a new copy arrives: a new row under the name
    db_spool.put_back(aside, name)  # same bytes: the aside row goes
    assert rows(pg_store.engine) == {name: RAW}
    aside = db_spool.withdraw(name)
    db_spool.put_back(aside, name)  # nobody took the name: renamed back
    assert rows(pg_store.engine) == {name: RAW}
    assert db_spool.withdraw("00/" + "0" * 64 + ".eml") is None


def test_a_crashed_purge_leaves_nothing_behind(db_spool, pg_store, tmp_path):
    _digest, name = db_spool.put(RAW)
    assert db_spool.withdraw(name) is not None  # … and the purge crashed
    again = DbSpool(pg_store.engine, tmp_path / "spool").withdraw(name)
    assert again is not None and again.row is not None  # the next purge finds the aside row
    db_spool.bury(again)
    assert rows(pg_store.engine) == {}
    # Crashed again, and the same bytes were stored since: the leftover goes at withdraw.
    db_spool.put(RAW)
    db_spool.withdraw(name)
    db_spool.put(RAW)
    final = db_spool.withdraw(name)
    assert final is not None and len(rows(pg_store.engine)) == 1
    db_spool.bury(final)
    assert rows(pg_store.engine) == {}


def test_older_rows_raw_in_the_file_spool(db_spool, pg_store, tmp_path):
    """A deployment that had its raw mail in files: read, listed, purged with the row."""
    old = Spool(tmp_path / "spool")
    _digest, name = old.put(RAW)
    assert db_spool.read(name) == RAW and db_spool.names() == [name]
    assert db_spool.location(name) == str(old.path(name))
    aside = db_spool.withdraw(name)
    assert aside is not None and aside.row is None and aside.file is not None
    db_spool.put_back(aside, name)
    assert old.names() == [name]
    db_spool.put(RAW)  # the same bytes arrive again: now in the table too
    aside = db_spool.withdraw(name)
    assert aside.row is not None and aside.file is not None
    db_spool.bury(aside)  # both go
    assert old.names() == [] and rows(pg_store.engine) == {}
    with pytest.raises(FileNotFoundError):
        db_spool.read(name)


def test_the_file_spool_withdraws_a_file_a_crashed_purge_left(tmp_path):
    spool = Spool(tmp_path / "spool")
    _digest, name = spool.put(RAW)
    assert spool.withdraw(name) is not None  # … and the purge crashed
    aside = spool.withdraw(name)
    assert aside is not None
    spool.bury(aside)
    assert not list((tmp_path / "spool").rglob("*.eml"))


# -- retention on PostgreSQL with raw mail in the table -------------------------------------
@pytest.fixture
def db_setup(pg_url, pg_store, tmp_path, sink):
    config, store, _file_ledger = retention.retention_world(pg_store, pg_url, tmp_path, sink)
    spool = spool_for(config, store)
    assert isinstance(spool, DbSpool)
    return config, store, Ledger(store.engine, spool)


def test_purge_on_the_table(db_setup, tmp_path):
    retention.test_purge_removes_exactly_the_eligible_files_and_bodies(db_setup)
    assert not list(db_setup[0].spool_dir.rglob("*.eml"))  # all of it was in the table


def test_a_row_taken_by_a_new_ledger_row_meanwhile_stays(db_setup):
    retention.test_a_file_taken_by_a_new_row_meanwhile_stays(db_setup)
    _config, store, _ledger = db_setup
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(raw_messages)).scalar_one() == 1


def test_purge_racing_a_receive_after_withdraw(db_setup):
    """The purge took the row aside; the same bytes arrive (a new row under the name) and
    their ledger row commits after the purge's check: the new raw row stays."""
    config, store, ledger = db_setup
    raw = retention.mail(20)
    retention.decided(ledger, "keiyaku", raw, retention.OLD)
    cutoff = retention.NOW - timedelta(days=90)

    class Late(DbSpool):
        def withdraw(self, name: str):  # noqa: ANN202
            aside = super().withdraw(name)
            self.new = ledger.spool.put(raw)  # the receive's put, its row not committed yet
            return aside

    late = Late(store.engine, config.spool_dir)
    with store.engine.connect() as conn:
        [file] = ledger_purge.purgeable(conn, cutoff)
    assert ledger_purge.purge_file(store.engine, late, file, cutoff, retention.NOW)
    row = ledger._record("other", raw, late.new[0], late.new[1], None, None, True,
                         retention.NOW).id
    ledger.spool.keep(late.new[1], raw)
    assert ledger.raw(ledger.get(row)) == raw


# -- mailbot migrate copies older spool files -----------------------------------------------
def test_migrate_copies_the_file_spool_into_the_table(pg_url, tmp_path):
    config = load_config_for(pg_url, tmp_path)
    old = Spool(config.spool_dir)
    names = sorted(old.put(retention.mail(n))[1] for n in range(3))
    (config.spool_dir / "ab").mkdir(exist_ok=True)
    (config.spool_dir / "ab" / "abcd.eml").write_bytes(b"not what its name says")
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}

    def migrate() -> str:
        done = subprocess.run([sys.executable, "-m", "mailbot.cli", "migrate", "--config",
                               str(tmp_path / "mailbot.toml")], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = migrate()
    assert "migrated from revision (empty database)" in first
    assert "4/4 file(s) checked" in first and "copied 3 raw message(s)" in first
    again = migrate()  # idempotent
    assert "nothing to do" in again and "copied 0 raw message(s)" in again
    engine = create_engine(pg_url)
    try:
        stored = rows(engine)
        assert sorted(stored) == names
        assert all(DbSpool(engine, tmp_path / "elsewhere").read(n) == stored[n] for n in names)
    finally:
        engine.dispose()
    assert len(old.names()) == 4  # the files stay until retention purges them


def test_stored_at_is_the_clock(pg_store, tmp_path):
    at = datetime(2026, 5, 1, tzinfo=UTC)
    spool = DbSpool(pg_store.engine, tmp_path / "spool", clock=lambda: at)
    spool.put(RAW)
    with pg_store.engine.connect() as conn:
        assert conn.execute(select(raw_messages.c.stored_at)).scalar_one() == at

"""`mailbot migrate`: an upgrade from the database the previous release left, on SQLite and
PostgreSQL.

"The previous release" is the revision just before the newest migration script, computed
from the scripts (not a number written here), so the test follows each new migration. The
database is created at that revision with Alembic, filled with the rows an older mailbot
wrote (a guarantee, its version, a decided ledger row, its reply request and the sent
reply), each row holding only the columns that revision has; then `mailbot migrate` brings
it to the newest revision, the rows are read back unchanged, and the current code reads them
through its own API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, select, text

from mailbot.cli import main
from mailbot.cli.migrate import current_revision, head_revision
from mailbot.ledger import Ledger, Spool
from mailbot.store import Store
from mailbot.store.migrate import MIGRATIONS
from mailbot.store.secret import key_hash

from .conftest import TEST_SECRET

NUMBER = "T-2026-000123"
KEY = "AB12-CD34-EF56-GH78"
AT = datetime(2026, 7, 1, 1, 2, 3, tzinfo=UTC)


def previous_revision() -> str:
    scripts = ScriptDirectory(str(MIGRATIONS))
    down = scripts.get_revision(head_revision()).down_revision
    assert isinstance(down, str), f"the newest migration has no single parent: {down!r}"
    return down


ROWS: dict[str, list[dict[str, Any]]] = {
    "guarantees": [{"guarantee_number": NUMBER, "latest_version": 1, "created_at": AT}],
    "guarantee_versions": [{
        "id": 1, "guarantee_number": NUMBER, "version": 1, "event": "新規", "change_no": None,
        "key_hash": key_hash(TEST_SECRET, KEY), "kind": "前払金保証", "issuer": "〇〇市",
        "contractor": "〇〇建設株式会社", "project_name": "〇〇川護岸改修工事", "jv_name": None,
        "contract_amount": 100_000_000, "guaranteed_amount": 40_000_000, "bank": None,
        "term_start": None, "term_end": None, "expires_on": None, "contract_date": None,
        "awarded_on": None, "surety": "〇〇保証株式会社", "issued_at": AT, "low_bid": False,
        "contract_key": "c" * 64, "row_hash": "r" * 64, "source": "old.csv:2",
        "recorded_at": AT}],
    "ledger": [{
        "id": 1, "mailbox": "keiyaku", "uidvalidity": None, "uid": None, "sha256": "a" * 64,
        "spool_name": "a" * 64 + ".eml", "size": 1234, "message_id": "<1@maru.example.jp>",
        "sender": "denshi@maru.example.jp", "subject": "【電子保証】前払金保証",
        "received_at": AT, "state": "replied", "attempts": 1, "last_error": None,
        "decided_at": AT, "decision": json.dumps({"status": "verified"}),
        "action": None, "action_state": "none", "reply_wanted": True}],
    "reply_requests": [{
        "id": 1, "ledger_id": 1, "to_addr": "denshi@maru.example.jp",
        "template": "confirmation", "context": "{}", "state": "sent", "created_at": AT}],
    "outbox": [{
        "id": 1, "kind": "reply", "reply_request_id": 1, "ledger_id": 1,
        "message_id": "<r1@issuer.example.jp>", "to_addrs": "denshi@maru.example.jp",
        "subject": "Re: 【電子保証】前払金保証", "raw": b"Subject: test\r\n\r\nbody\r\n",
        "state": "sent", "immediate": False, "attempts": 1, "next_attempt_at": AT,
        "deadline": AT, "last_error": None, "created_at": AT, "sent_at": AT}],
}


def _plain(value: Any) -> Any:
    """Datetimes compared as UTC wall time: SQLite gives them back without a zone."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _old_database(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        alembic = AlembicConfig()
        alembic.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            alembic.attributes["connection"] = connection
            command.upgrade(alembic, revision)
            tables = MetaData()
            tables.reflect(connection)
            for name, rows in ROWS.items():
                table = tables.tables[name]
                connection.execute(table.insert(), [
                    {k: v for k, v in row.items() if k in table.c} for row in rows])
            if connection.dialect.name == "postgresql":  # ids given: move the sequences on
                for name in ("guarantee_versions", "ledger", "reply_requests", "outbox"):
                    connection.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), 1)"))
        assert current_revision(engine) == revision
    finally:
        engine.dispose()


def test_previous_revision_is_computed_from_the_scripts() -> None:
    previous = previous_revision()
    assert previous != head_revision()
    assert ScriptDirectory(str(MIGRATIONS)).get_revision(previous) is not None


def test_migrate_upgrades_the_previous_release_s_database(
        store_url: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    previous, head = previous_revision(), head_revision()
    _old_database(store_url, previous)

    assert main(["migrate", "--store", store_url]) == 0
    out = capsys.readouterr().out
    assert f"migrated from revision {previous} to {head}" in out

    engine = create_engine(store_url)
    try:
        assert current_revision(engine) == head
        tables = MetaData()
        with engine.connect() as connection:
            tables.reflect(connection)
            for name, rows in ROWS.items():
                table = tables.tables[name]
                for row in rows:
                    kept = {k: v for k, v in row.items() if k in table.c}
                    found = connection.execute(select(*[table.c[k] for k in kept])).one()
                    assert {k: _plain(v) for k, v in found._mapping.items()} == \
                        {k: _plain(v) for k, v in kept.items()}, name
    finally:
        engine.dispose()

    # The current code reads what the older one wrote, and can write after it.
    store = Store.open(store_url, secret=TEST_SECRET)
    try:
        (version,) = store.versions(NUMBER)
        assert version.key_hash == store.hash_key(KEY) and version.contractor == "〇〇建設株式会社"
        ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
        entry = ledger.get(1)
        assert entry is not None and entry.state == "replied" and entry.mailbox == "keiyaku"
        receipt = ledger.receive("keiyaku", b"Subject: new\r\n\r\nafter the upgrade\r\n")
        assert receipt.new and receipt.id == 2
    finally:
        store.close()

    assert main(["migrate", "--store", store_url]) == 0
    assert f"already at revision {head}" in capsys.readouterr().out


def test_migrate_refuses_a_database_from_a_newer_release(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    assert main(["migrate", "--store", url]) == 0
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    capsys.readouterr()
    assert main(["migrate", "--store", url]) == 2
    err = capsys.readouterr().err
    assert "9999_future" in err and "newer release" in err


def test_migrate_reads_the_store_from_the_config(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mailbot.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "from-config.db"}"\n',
                      encoding="utf-8")
    assert main(["migrate", "--config", str(config)]) == 0
    assert f"from-config.db: migrated from revision (empty database) to {head_revision()}" \
        in capsys.readouterr().out
    assert not (tmp_path / "mailbot.secret").exists()  # no secret needed, none invented

"""The guarantee store on SQLite and PostgreSQL: history, idempotence, atomicity, secrets."""

from __future__ import annotations

import logging
import os
import stat
from datetime import date

import pytest
from sqlalchemy import text

from mailbot.errors import UsageError
from mailbot.store import GuaranteeEvent, Store, StoreError
from mailbot.store.secret import load_secret

KEY = "Z28YUEAJ38ux"
NEW = GuaranteeEvent(
    "35075-00001M", "new", KEY, kind="前払金保証", issuer="〇〇市", contractor="〇〇建設 株式会社",
    project_name="〇〇浄水場△△修繕工事", contract_amount=50_000_000,
    guaranteed_amount=20_000_000, expires_on=date(2027, 3, 31), source="f.csv:2",
)


def test_history_in_order_with_fields_carried(store):
    store.apply([
        NEW,
        GuaranteeEvent("35075-00001M", "amendment", "aB3dEf7hJk9m", guaranteed_amount=19_000_000,
                       change_no=1, source="f.csv:3"),
        GuaranteeEvent("35075-00001M", "correction", project_name="〇〇浄水場△△修繕工事（その2）",
                       source="f.csv:4"),
        GuaranteeEvent("35075-00001M", "cancellation", source="f.csv:5"),
    ])
    history = store.versions("35075-00001M")
    assert [(v.version, v.event) for v in history] == [
        (1, "new"), (2, "amendment"), (3, "correction"), (4, "cancellation")
    ]
    assert history[1].guaranteed_amount == 19_000_000 and history[1].issuer == "〇〇市"
    assert history[2].project_name.endswith("（その2）") and history[2].change_no is None
    assert history[0].key_hash != history[1].key_hash  # the amendment brought a new key
    assert history[1].key_hash == history[2].key_hash == history[3].key_hash
    assert store.versions("35075-99999M") == []


def test_reapplying_the_same_events_changes_nothing(store):
    events = [NEW, GuaranteeEvent("35075-00001M", "amendment", guaranteed_amount=1, source="x:3")]
    assert store.apply(events).added == 2
    report = store.apply(events)
    assert (report.added, report.skipped) == (0, 2)
    assert len(store.versions("35075-00001M")) == 2


def test_a_bad_event_leaves_the_store_unchanged(store):
    store.apply([NEW])
    batch = [
        GuaranteeEvent("35075-00002M", "new", "Qw2Er4Ty6Ui0", source="g.csv:2"),
        GuaranteeEvent("35075-00009M", "amendment", guaranteed_amount=1, source="g.csv:3"),
        GuaranteeEvent("35075-00001M", "new", "Qw2Er4Ty6Ui1", source="g.csv:4"),
    ]
    with pytest.raises(StoreError) as failure:
        store.apply(batch)
    assert failure.value.errors == [
        "g.csv:3: guarantee 35075-00009M is not in the store (a 新規 row must come first)",
        "g.csv:4: guarantee 35075-00001M already exists (use 変更 or 訂正)",
    ]
    assert store.count() == 1 and store.versions("35075-00002M") == []


def test_nothing_follows_a_cancellation(store):
    store.apply([NEW, GuaranteeEvent("35075-00001M", "cancellation", source="c:1")])
    with pytest.raises(StoreError, match="is cancelled"):
        store.apply([GuaranteeEvent("35075-00001M", "amendment", guaranteed_amount=2, source="c:2")])


def test_no_key_in_clear_in_the_database_or_the_logs(store, store_url, caplog):
    from mailbot.verify import Claim, IssuerPolicy, verify

    caplog.set_level(logging.DEBUG)
    store.apply([NEW])
    verify(store, Claim("35075-00001M", KEY, date(2026, 8, 1), sender="a@example.jp"),
           IssuerPolicy())
    verify(store, Claim("35075-00001M", "Wrong0Key123", date(2026, 8, 1)), IssuerPolicy())
    assert KEY not in caplog.text and "Wrong0Key123" not in caplog.text
    if store_url.startswith("sqlite"):
        path = store_url.removeprefix("sqlite:///")
        raw = b"".join(open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p))
        assert KEY.encode() not in raw and b"Wrong0Key123" not in raw
    else:
        with store.engine.connect() as conn:
            tables = ["guarantees", "guarantee_versions", "key_failures"]
            dump = " ".join(str(conn.execute(text(f"SELECT * FROM {t}")).fetchall()) for t in tables)
        assert "35075-00001M" in dump
        assert KEY not in dump and "Wrong0Key123" not in dump


def test_secret_from_env_then_file_then_created_beside_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("MAILBOT_SECRET", raising=False)
    monkeypatch.delenv("MAILBOT_SECRET_FILE", raising=False)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    created = load_secret(url)
    secret_file = tmp_path / "mailbot.secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert load_secret(url) == created  # created once, then reused
    monkeypatch.setenv("MAILBOT_SECRET_FILE", str(secret_file))
    assert load_secret("postgresql+psycopg://x@127.0.0.1/db") == created
    monkeypatch.setenv("MAILBOT_SECRET", "from-the-environment-0123")
    assert load_secret(url) == b"from-the-environment-0123"


def test_postgresql_never_gets_a_silent_secret(monkeypatch):
    monkeypatch.delenv("MAILBOT_SECRET", raising=False)
    monkeypatch.delenv("MAILBOT_SECRET_FILE", raising=False)
    with pytest.raises(UsageError, match="MAILBOT_SECRET"):
        load_secret("postgresql+psycopg://mailbot@127.0.0.1:5432/postgres")


def test_reopening_migrates_nothing_and_keeps_data(store_url):
    first = Store.open(store_url, secret=b"s" * 32)
    first.apply([NEW])
    first.close()
    again = Store.open(store_url, secret=b"s" * 32)
    assert again.count() == 1
    again.close()


def test_a_store_refuses_a_secret_it_was_not_created_with(store_url):
    """Opened with another key-hashing secret (a MAILBOT_SECRET exported for a different
    store), every valid key would be a key_mismatch: the store says so instead."""
    first = Store.open(store_url, secret=b"the-first-secret-0123456789abcdef")
    first.close()
    again = Store.open(store_url, secret=b"the-first-secret-0123456789abcdef")
    again.close()
    with pytest.raises(UsageError) as refused:
        Store.open(store_url, secret=b"another-secret-0123456789abcdefgh")
    assert "not the one the store" in str(refused.value)
    assert "another-secret" not in str(refused.value) and "first-secret" not in str(refused.value)

"""Every message in a watched folder ends filed (issue 10 §3), on SQLite and PostgreSQL.

End to end: Dovecot → daemon → aiosmtpd sink. Two byte-identical copies in the INBOX are
both filed with one reply; a mail a clerk moves back from 「電子保証/要確認」 into the INBOX
is decided again against the current store, linked to the earlier decision, and answered
only when the outcome changed. Below that, the ledger's rule that tells a duplicate from a
mail moved back, `mailbot status` counting unfiled mail, and the migration that lets one
folder hold the same bytes twice.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from imapclient import IMAPClient
from sqlalchemy import create_engine, event, func, insert, select, text

from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.migrate import MIGRATIONS
from mailbot.store.schema import ledger as ledger_table
from mailbot.store.schema import outbox, reply_requests
from mailbot.store.store import _sqlite_pragmas
from parsers import Reader

from .configs import issuer_config
from .conftest import TEST_SECRET
from .issuer_daemon import SMTP
from .test_daemon import (
    DONE,
    REVIEW,
    USER,
    Running,
    imap_counts,
    notice_mail,
    server_name,
    wait_for,
)

KEY = "Z28YUEAJ38ux"


@pytest.fixture
def issuer(dovecot, sink, store, store_url, tmp_path, monkeypatch):
    """The issuer's config on the parametrised store; numbers 0–9 are registered."""
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "secret")
    path = tmp_path / "mailbot.toml"
    path.write_text(SMTP.format(port=sink.settings.port) + issuer_config(
        store_url, tmp_path / "spool", imap_port=dovecot.imap_port, user=USER),
        encoding="utf-8")
    store.apply([GuaranteeEvent(f"35075-{i:05d}M", "new", KEY, issuer="〇〇市", source="t")
                 for i in range(10)])
    return load_config(path), store


def decisions(store: Store) -> list[tuple[int, dict, int | None]]:
    """(ledger id, decision record, copy_of) of every decided row, in ledger order."""
    with store.engine.connect() as conn:
        found = conn.execute(select(ledger_table.c.id, ledger_table.c.decision,
                                    ledger_table.c.copy_of)
                             .where(ledger_table.c.decision.is_not(None))
                             .order_by(ledger_table.c.id)).all()
    return [(r.id, json.loads(r.decision), r.copy_of) for r in found]


def settled(store: Store, rows: int) -> bool:
    """`rows` messages decided and filed, and every reply they asked for sent: from here on
    the counts are final (a copy that was to be answered would have its reply request)."""
    with store.engine.connect() as conn:
        def count(table, *where) -> int:
            return conn.execute(select(func.count()).select_from(table).where(*where)
                                ).scalar_one()
        return (count(ledger_table) == rows
                and count(ledger_table, ledger_table.c.state.in_(("decided", "replied")),
                          ledger_table.c.action_state == "done") == rows
                and count(reply_requests, reply_requests.c.state == "stored") == 0
                and count(outbox, outbox.c.state != "sent") == 0)


def replies(sink) -> list:
    return [message_from_bytes(raw, policy=policy.default) for _f, _t, raw in sink.accepted]


def clerk_moves_back(dovecot, folder: str) -> None:
    """What a clerk does in a mail program: move everything in `folder` to the INBOX."""
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login(USER, "secret")
        client.select_folder(server_name(client, folder))
        client.move(client.search(["ALL"]), "INBOX")


def message_id(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=policy.default)["Message-ID"]).strip()


# -- end to end ----------------------------------------------------------------------------
def test_two_byte_identical_copies_are_both_filed_with_one_reply(issuer, dovecot, sink):
    config, store = issuer
    raw = notice_mail(1)
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login(USER, "secret")
        client.append("INBOX", raw)  # the same bytes twice in one folder
        client.append("INBOX", raw)
    with Running(config, store, outbox_seconds=0.3):
        wait_for(lambda: settled(store, 2), 90, "both copies decided, filed and answered")
    assert imap_counts(dovecot) == {"INBOX": 0, DONE: 2}
    (first, record, first_copy_of), (second, copy, copy_of) = decisions(store)
    assert (record["status"], first_copy_of) == ("verified", None)
    assert (copy["status"], copy["duplicate_of"], copy_of) == ("duplicate", first, first)
    [reply] = replies(sink)
    assert str(reply["In-Reply-To"]).strip() == message_id(raw)
    assert "35075-00001M" in reply.get_content()


def test_a_mail_moved_back_after_the_store_changed_is_decided_again_and_answered(
        issuer, dovecot, sink, caplog):
    config, store = issuer
    raw = notice_mail(77)  # 35075-00077M is not registered yet: a discrepancy
    caplog.set_level(logging.INFO, logger="mailbot.decision")
    with Running(config, store, outbox_seconds=0.3):
        dovecot.deliver(USER, raw)
        wait_for(lambda: settled(store, 1) and len(sink.accepted) == 1, 90, "the first answer")
        assert imap_counts(dovecot) == {"INBOX": 0, REVIEW: 1}
        # The surety's register arrives late; the clerk puts the mail back to be checked.
        store.apply([GuaranteeEvent("35075-00077M", "new", KEY, issuer="〇〇市", source="t")])
        clerk_moves_back(dovecot, REVIEW)
        wait_for(lambda: settled(store, 2) and len(sink.accepted) == 2, 90,
                 "the mail decided again and answered")
    assert imap_counts(dovecot) == {"INBOX": 0, DONE: 1, REVIEW: 0}
    (first, before, _), (second, after, copy_of) = decisions(store)
    assert before["status"] == "discrepancy"
    assert (after["status"], after["redecision_of"], after["outcome_changed"], copy_of) == (
        "verified", first, True, first)
    assert after["earlier"] == {"status": "discrepancy", "outcomes": before["outcomes"]}
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mailbot.decision"]
    assert [(line["ledger_id"], line.get("redecision_of")) for line in logged] == [
        (first, None), (second, first)]
    old, new = replies(sink)
    assert str(old["In-Reply-To"]).strip() == str(new["In-Reply-To"]).strip() == message_id(raw)
    assert "保証契約番号の電子保証を確認できませんでした" in old.get_content()
    assert "35075-00077M" in new.get_content()
    assert "保証契約番号の電子保証を確認できませんでした" not in new.get_content()
    assert new["Message-ID"] != old["Message-ID"]


def test_a_mail_moved_back_with_nothing_changed_is_filed_again_without_a_reply(
        issuer, dovecot, sink):
    config, store = issuer
    raw = notice_mail(77)
    with Running(config, store, outbox_seconds=0.3):
        dovecot.deliver(USER, raw)
        wait_for(lambda: settled(store, 1) and len(sink.accepted) == 1, 90, "the first answer")
        clerk_moves_back(dovecot, REVIEW)
        wait_for(lambda: settled(store, 2), 90, "the mail decided again and filed")
    assert imap_counts(dovecot) == {"INBOX": 0, REVIEW: 1}
    (first, before, _), (_second, after, _) = decisions(store)
    assert (after["status"], after["redecision_of"], after["outcome_changed"]) == (
        before["status"], first, False)
    assert after["reply"] is None and str(first) in after["reply_skipped"]
    assert len(sink.accepted) == 1  # settled: no reply request was made for the second
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(reply_requests)).scalar_one() == 1


# -- the ledger's rule -----------------------------------------------------------------------
def _mail(n: int, trace: str = "") -> bytes:
    return (f"{trace}From: tanto@maru-kensetsu.example.jp\r\nTo: {USER}\r\n"
            f"Message-ID: <m{n}@maru-kensetsu.example.jp>\r\nSubject: 【電子保証】{n}\r\n\r\n"
            f"保証契約番号：35075-{n:05d}M\r\n").encode()


@pytest.fixture
def ledger(store, tmp_path):
    return Ledger(store.engine, Spool(tmp_path / "spool"))


def _decided(ledger: Ledger, row: int, status: str, action: str | None, moved: bool) -> None:
    entry = ledger.claim(now=datetime.now(UTC))
    assert entry is not None and entry.id == row
    ledger.decide(row, {"status": status, "outcomes": []}, None, action, body_sha256=None)
    if moved:
        ledger.action_done(row)


def test_receive_keys_imap_rows_by_uid_and_listener_rows_by_content(ledger):
    raw = _mail(1)
    first = ledger.receive("keiyaku", raw, uidvalidity=5, uid=1)
    second = ledger.receive("keiyaku", raw, uidvalidity=5, uid=2)
    assert first.new and second.new and first.id != second.id
    assert ledger.receive("keiyaku", raw, uidvalidity=5, uid=2) == type(second)(second.id, False)
    # Over SMTP/LMTP the same bytes again are a relay's retry: the same row.
    retry = ledger.receive("lmtp", raw)
    assert retry.new and ledger.receive("lmtp", raw) == type(retry)(retry.id, False)
    # After a UIDVALIDITY change each copy still in the folder finds its row again …
    _decided(ledger, first.id, "verified", "keyword:$Checked", moved=True)
    assert ledger.receive("keiyaku", raw, uidvalidity=6, uid=1) == type(first)(first.id, False)
    assert ledger.receive("keiyaku", raw, uidvalidity=6, uid=2) == type(second)(second.id, False)
    # … while a copy we had moved out and that came back is a new row.
    _decided(ledger, second.id, "duplicate", "move:電子保証/処理済", moved=True)
    back = ledger.receive("keiyaku", raw, uidvalidity=7, uid=1)
    assert ledger.receive("keiyaku", raw, uidvalidity=7, uid=2).new
    assert ledger.get(back.id).uidvalidity == 7 and back.id == first.id  # found by content
    assert ledger.get(second.id).uidvalidity == 6  # filed away: stays where it was


@pytest.mark.parametrize(("earlier", "copy", "expected"), [
    # (how the first row was filed, how the copy arrives, what the copy is)
    ("pending-move", "same-bytes", "duplicate"),  # still in the folder, waiting for its move
    ("undecided", "same-bytes", "duplicate"),  # both arrived together
    ("keyword", "same-bytes", "duplicate"),  # filed in place: a second copy beside it
    ("moved", "same-bytes", "redecision"),  # we moved it out; a clerk moved it back
    ("moved", "redelivered", "duplicate"),  # a second delivery: other trace headers
    ("none", "redelivered", "duplicate"),  # a relay's retry to a listener (no UID)
])
def test_a_copy_is_a_duplicate_unless_it_came_back_after_we_filed_it(ledger, earlier, copy,
                                                                     expected):
    from mailbot.pipeline.facts import body_sha256

    raw = _mail(3)
    mailbox = "keiyaku"
    imap = earlier != "none"
    first = ledger.receive(mailbox, raw, **({"uidvalidity": 5, "uid": 1} if imap else {})).id
    if earlier != "undecided":
        entry = ledger.claim(now=datetime.now(UTC))
        action = {"keyword": "keyword:$Checked", "none": None}.get(earlier,
                                                                   "move:電子保証/要確認")
        ledger.decide(first, {"status": "discrepancy", "outcomes": ["unknown_number"]}, None,
                      action, body_sha256=body_sha256(raw))
        if earlier in ("moved", "keyword"):
            ledger.action_done(entry.id)
    again = {"same-bytes": raw,
             "redelivered": _mail(3, trace="Received: from relay.example.jp\r\n")}[copy]
    second = ledger.receive(mailbox, again, **({"uidvalidity": 5, "uid": 2} if imap else {})).id
    assert second != first
    entry = ledger.get(second)
    found = ledger.earlier_copy(entry, body_sha256(again))
    assert found is not None
    assert (found.kind, found.of, found.head) == (expected, first, first)
    if expected == "redecision":
        assert found.decision["outcomes"] == ["unknown_number"]


def test_a_message_seen_for_the_first_time_is_no_copy(ledger):
    from mailbot.pipeline.facts import body_sha256

    one = ledger.receive("keiyaku", _mail(4), uidvalidity=5, uid=1).id
    ledger.receive("other", _mail(4), uidvalidity=5, uid=1)  # another mailbox: another mail
    assert ledger.earlier_copy(ledger.get(one), body_sha256(_mail(4))) is None


def test_a_notice_moved_back_into_the_contractors_queue_is_planned_again(store, store_url,
                                                                          tmp_path, monkeypatch):
    """The contractor side: a notice nobody could route is filed for review; once the
    register names its issuer, the clerk moves it back and it is submitted (a duplicate
    copy beside it is not)."""
    from sqlalchemy import select as sql_select

    from mailbot.store.schema import submissions

    from .configs import CONTRACTOR
    from .test_submission_forms import mail as notice_with_pdf

    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "secret")
    path = tmp_path / "contractor.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n[spool]\ndir = "{tmp_path / "spool"}"\n' + CONTRACTOR
        + '[issuers.city]\nname = "〇〇市"\n[issuers.city.submission]\n'
        'to = "keiyaku@city.example.jp"\nsubject = "【電子保証】{{ project_name }}"\n'
        '[[mailboxes]]\nname = "queue"\nrole = "contractor"\nkind = "imap"\n'
        'host = "127.0.0.1"\nport = 1\ntls = "none"\nuser = "denshi@maru.example.jp"\n'
        'password_env = "MAILBOT_TEST_IMAP_PASSWORD"\n', encoding="utf-8")
    config = load_config(path)
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    pipeline = Pipeline(config, store, ledger, Reader())
    raw = notice_with_pdf("35075-00042M", "村道〇〇線舗装工事")

    def decided(uid: int) -> dict:
        row = ledger.receive("queue", raw, uidvalidity=9, uid=uid).id
        while pipeline.process_one():
            pass
        entry = ledger.get(row)
        if entry.action_state == "pending":  # what the IMAP watcher does once it moved it
            ledger.action_done(row)
        return {"id": row, **json.loads(entry.decision)}

    first = decided(1)
    assert first["status"] == "unroutable"
    store.apply([GuaranteeEvent("35075-00042M", "new", KEY, issuer="〇〇市", source="t")])
    again = decided(2)  # moved back by the clerk
    assert (again["status"], again["redecision_of"]) == ("submitted", first["id"])
    with store.engine.connect() as conn:
        [submission] = conn.execute(sql_select(submissions.c.id, submissions.c.state,
                                               submissions.c.issuer)).all()
    assert (submission.state, submission.issuer) == ("queued", "city")
    # The clerk copies it back twice: the first copy is decided again (the notice is
    # submitted already: no second submission), the second is a duplicate of it.
    copy = ledger.receive("queue", raw, uidvalidity=9, uid=3).id
    other = ledger.receive("queue", raw, uidvalidity=9, uid=4).id
    while pipeline.process_one():
        pass
    redecided = json.loads(ledger.get(copy).decision)
    assert redecided["redecision_of"] == again["id"]
    assert [s["result"] for s in redecided["submissions"]] == [
        f"duplicate of submission {submission.id}"]
    assert json.loads(ledger.get(other).decision)["duplicate_of"] == copy
    with store.engine.connect() as conn:
        assert len(conn.execute(sql_select(submissions.c.id)).all()) == 1


# -- mailbot status ----------------------------------------------------------------------------
def test_status_counts_decided_mail_not_yet_filed_as_backlog(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "secret")
    url = f"sqlite:///{tmp_path / 's.db'}"
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(url, tmp_path / "spool", imap_port=1), encoding="utf-8")
    config = load_config(path)
    store = Store.open(url, secret=TEST_SECRET)
    try:
        ledger = Ledger(store.engine, Spool(config.spool_dir))
        ledger.receive("keiyaku", _mail(5), uidvalidity=5, uid=1)
        pipeline = Pipeline(config, store, ledger, Reader())
        while pipeline.process_one():
            pass
        [entry] = ledger.entries()
        assert (entry.state, entry.action_state) == ("decided", "pending")  # not moved yet
    finally:
        store.close()
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    status = subprocess.run([sys.executable, "-m", "mailbot.cli", "status", "--config",
                             str(path), "--json"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)["keiyaku"]
    # The mail waits to be filed (and its reply to be rendered): backlog is not 0.
    assert report["waiting"] == {"to file": 1, "replies to render": 1}
    assert report["backlog"] == 2


# -- the migration -------------------------------------------------------------------------------
def test_the_migration_keeps_the_ledger_and_lets_a_folder_hold_copies(store_url, tmp_path):
    """A store made before 0005_ledger_copies, with replies referring to its rows, upgrades
    (SQLite rebuilds the table: foreign keys must not stop it) and then takes copies."""
    engine = create_engine(store_url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    alembic = AlembicConfig()
    alembic.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        alembic.attributes["connection"] = conn
        command.upgrade(alembic, "0004")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = conn.execute(text(
            "INSERT INTO ledger (mailbox, uidvalidity, uid, sha256, spool_name, size, "
            "received_at, state, attempts, action_state, reply_wanted) VALUES ('keiyaku', 5, "
            "1, 'abc', 'x.eml', 1, :now, 'decided', 1, 'done', true) RETURNING id"),
            {"now": now}).scalar_one()
        conn.execute(insert(reply_requests).values(ledger_id=row, to_addr="a@maru.example.jp",
                                                   template="confirmation", context="{}",
                                                   state="sent", created_at=now))
    engine.dispose()
    store = Store.open(store_url, secret=TEST_SECRET)
    try:
        ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
        assert ledger.get(row).sha256 == "abc" and ledger.get(row).copy_of is None
        with store.engine.connect() as conn:
            assert conn.execute(select(reply_requests.c.ledger_id)).scalar_one() == row
        assert ledger.receive("keiyaku", _mail(6), uidvalidity=5, uid=2).new
        assert ledger.receive("keiyaku", _mail(6), uidvalidity=5, uid=3).new
        if store.engine.dialect.name == "sqlite":
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()

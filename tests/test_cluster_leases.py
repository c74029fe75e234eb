"""Cluster leases, job ticks and claims on SQLite and PostgreSQL (mailbot/cluster): one
holder at a time, takeover after the expiry, a job's run once per tick, a dead node's rows
back in line and nobody else's."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from mailbot.cluster import Leases, Node, lease_rows
from mailbot.cluster.jobs import JobRunner, daily_tick, interval_tick
from mailbot.errors import UsageError
from mailbot.ledger import MAX_ATTEMPTS, Ledger, Spool
from mailbot.store.schema import leases, ledger

RAW = b"From: a@maru.example.jp\r\nMessage-ID: <%d@maru.example.jp>\r\nSubject: t\r\n\r\nhi\r\n"


def expire(store, name: str) -> None:
    """Make lease `name` run out now (as if its holder stopped renewing it long ago)."""
    with store.engine.begin() as conn:
        conn.execute(update(leases).where(leases.c.name == name)
                     .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC)))


def test_one_holder_until_the_lease_runs_out_then_a_new_token(store):
    a, b = Leases(store.engine, "a#1", 30), Leases(store.engine, "b#1", 30)
    first = a.hold("mailbox:keiyaku")
    assert first is not None and first.token == 1
    assert b.hold("mailbox:keiyaku") is None  # held: the other node waits
    again = a.hold("mailbox:keiyaku")  # renewing keeps the token
    assert again is not None and again.token == 1
    assert [lease.name for lease in a.renew_all()] == ["mailbox:keiyaku"]
    expire(store, "mailbox:keiyaku")
    assert a.renew_all() == []  # an expired lease is not renewed: it may be someone else's
    taken = b.hold("mailbox:keiyaku")
    assert taken is not None and taken.token == 2  # a new holder, a new fencing token
    assert a.hold("mailbox:keiyaku") is None
    (row,) = lease_rows(store.engine)
    assert (row.node, row.holder, row.expired) == ("b", "b#1", False)
    b.release("mailbox:keiyaku")  # a clean stop: free at once
    assert a.hold("mailbox:keiyaku") is not None


def test_a_node_name_is_taken_at_once_in_its_own_place_and_refused_elsewhere(store, tmp_path):
    book = Ledger(store.engine, Spool(tmp_path / "spool"))
    first = Node("n1", book, lease_seconds=3, claim_seconds=60, place="host-a:/srv/a")
    first.join(threading.Event())
    # The same place again: the earlier run is dead (it held the folder's lock).
    first.leases.hold("mailbox:keiyaku")
    restarted = Node("n1", book, lease_seconds=3, claim_seconds=60, place="host-a:/srv/a")
    restarted.join(threading.Event())
    # … and so are the earlier run's mailbox leases: no wait for their expiry.
    assert restarted.leases.hold("mailbox:keiyaku") is not None
    holder = next(r.holder for r in lease_rows(store.engine) if r.name == "node:n1")
    assert holder == restarted.holder
    # Another host with the same name waits out the lease and then refuses to start.
    elsewhere = Node("n1", book, lease_seconds=3, claim_seconds=60, place="host-b:/srv/a")
    started = time.monotonic()
    restarted_keeps = threading.Thread(target=lambda: [restarted.beat() or time.sleep(0.5)
                                                       for _ in range(20)], daemon=True)
    restarted_keeps.start()
    with pytest.raises(UsageError, match="n1"):
        elsewhere.join(threading.Event())
    assert time.monotonic() - started >= 3


def test_a_job_runs_once_per_tick_and_a_dead_holders_run_is_taken_over(store):
    a, b = JobRunner(Leases(store.engine, "a#1", 30)), JobRunner(Leases(store.engine, "b#1", 30))
    runs: list[str] = []
    assert a.run("digest", "d2026-12-01", lambda: runs.append("a"))
    assert not b.run("digest", "d2026-12-01", lambda: runs.append("b"))  # done already
    assert not a.run("digest", "d2026-11-30", lambda: runs.append("old"))  # an older tick
    assert b.run("digest", "d2026-12-02", lambda: runs.append("b"))  # the next tick
    assert runs == ["a", "b"]
    # A run whose holder dies in the middle: nobody takes it while the lease lives …
    leases_a = Leases(store.engine, "a#1", 30)
    lease = leases_a.start_tick("job:digest", "d2026-12-03")
    assert lease is not None
    assert not b.run("digest", "d2026-12-03", lambda: runs.append("too soon"))
    b.resume()
    assert runs == ["a", "b"]
    # … and once it has run out, another node's heartbeat runs it under the same tick.
    expire(store, "job:digest")
    b.jobs["digest"] = lambda: runs.append("taken over")
    b.resume()
    assert runs == ["a", "b", "taken over"]
    assert not leases_a.finish_tick(lease)  # the dead holder's token is stale
    assert not a.run("digest", "d2026-12-03", lambda: runs.append("twice"))


def test_tick_names_order_as_strings():
    early = datetime(2026, 12, 1, 14, 59, tzinfo=UTC)  # 23:59 JST
    late = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 00:00 JST the next day
    assert daily_tick(early) == "d2026-12-01" < daily_tick(late) == "d2026-12-02"
    assert interval_tick(early, 10) < interval_tick(late, 10)
    assert interval_tick(datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC), 10) == \
        interval_tick(datetime(2026, 12, 1, 0, 0, 9, tzinfo=UTC), 10)


def test_claims_carry_their_node_and_only_the_dead_nodes_rows_come_back(store, tmp_path):
    book = Ledger(store.engine, Spool(tmp_path / "spool"))
    ids = [book.receive("keiyaku", RAW % i).id for i in range(4)]
    now = datetime.now(UTC)
    mine = book.claim(now=now, holder="n1#aaaa", claim_seconds=300)
    theirs = book.claim(now=now, holder="n2#bbbb", claim_seconds=300)
    stale = book.claim(now=now, holder="n3#cccc", claim_seconds=300)
    assert [mine.id, theirs.id, stale.id] == ids[:3]
    # n1 restarts: its own earlier run's row comes back, n2's (alive) and n3's do not.
    assert book.recover("n1#dddd") == 1
    states = {book.get(i).id: book.get(i).state for i in ids}
    assert states == {ids[0]: "received", ids[1]: "processing", ids[2]: "processing",
                      ids[3]: "received"}
    # n2 renews its claims; n3 stopped, so its claim runs out and its row is back in line.
    assert book.renew_claims("n2#bbbb", 300) == 1
    with store.engine.begin() as conn:
        conn.execute(update(ledger).where(ledger.c.id == stale.id)
                     .values(claim_expires=datetime(2000, 1, 1, tzinfo=UTC)))
    assert book.reclaim_expired() == 1
    assert book.get(stale.id).state == "received"
    assert book.get(theirs.id).state == "processing"
    with store.engine.connect() as conn:
        holder = conn.execute(select(ledger.c.claimed_by).where(ledger.c.id == stale.id)).scalar()
    assert holder is None


def test_the_heartbeat_renews_only_the_claims_a_pipeline_has_in_hand(store, tmp_path):
    """A claim whose commit reached the database but whose answer the outage swallowed is
    the node's in the ledger and in no pipeline's hand: its claim is not renewed, runs out
    and the row comes back in line (it once stayed `processing` for ever)."""
    book = Ledger(store.engine, Spool(tmp_path / "spool"))
    node = Node("n1", book, lease_seconds=3, claim_seconds=60)
    node.join(threading.Event())
    working = book.receive("keiyaku", RAW % 21).id
    lost = book.receive("keiyaku", RAW % 22).id
    for _ in range(2):
        book.claim(now=datetime.now(UTC), holder=node.holder, claim_seconds=60)
    node.in_hand = lambda: {working}
    with store.engine.begin() as conn:  # both claims about to run out
        conn.execute(update(ledger).where(ledger.c.id.in_([working, lost]))
                     .values(claim_expires=datetime(2000, 1, 1, tzinfo=UTC)))
    node.beat()  # renews the claim in hand, then reclaims the one that ran out
    assert book.get(working).state == "processing"
    assert book.get(lost).state == "received"
    node.in_hand = lambda: set()
    assert book.renew_claims(node.holder, 60, node.in_hand()) == 0


def test_a_row_in_hand_at_three_dead_nodes_is_quarantined(store, tmp_path):
    book = Ledger(store.engine, Spool(tmp_path / "spool"))
    row = book.receive("keiyaku", RAW % 9).id
    for attempt in range(1, MAX_ATTEMPTS + 1):
        entry = book.claim(now=datetime.now(UTC), holder=f"n{attempt}#0000", claim_seconds=10)
        assert entry is not None and entry.attempts == attempt
        with store.engine.begin() as conn:
            conn.execute(update(ledger).where(ledger.c.id == row)
                         .values(claim_expires=datetime(2000, 1, 1, tzinfo=UTC)))
        book.reclaim_expired()
    assert book.get(row).state == "quarantined"
    assert "node deciding this message stopped" in book.get(row).last_error


def test_nodes_claiming_at_once_never_take_the_same_row(store, tmp_path):
    book = Ledger(store.engine, Spool(tmp_path / "spool"))
    total = 60
    for i in range(total):
        book.receive("keiyaku", RAW % (100 + i))
    taken: list[int] = []
    lock = threading.Lock()

    def node(name: str) -> None:
        while True:
            entry = book.claim(now=datetime.now(UTC), holder=f"{name}#0001", claim_seconds=60)
            if entry is None:
                return
            with lock:
                taken.append(entry.id)

    threads = [threading.Thread(target=node, args=(f"n{k}",)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(taken) == total and len(set(taken)) == total


def test_a_dead_nodes_rows_come_back_at_once_and_its_late_decision_is_refused(store, tmp_path):
    book = Ledger(store.engine, Spool(tmp_path / "spool"))
    row = book.receive("keiyaku", RAW % 7).id
    dead = book.claim(now=datetime.now(UTC), holder="n1#dead", claim_seconds=300)
    alive = book.receive("keiyaku", RAW % 8).id
    book.claim(now=datetime.now(UTC), holder="n2#live", claim_seconds=300)
    assert book.reclaim_dead({"n2#live"}) == 1
    assert (book.get(row).state, book.get(alive).state) == ("received", "processing")
    again = book.claim(now=datetime.now(UTC), holder="n2#live", claim_seconds=300)
    assert again.id == row and again.attempts == 2
    with pytest.raises(RuntimeError):  # the first node was only cut off: too late
        book.decide(row, {"status": "verified"}, None, None, attempt=dead.attempts)
    book.decide(row, {"status": "verified"}, None, None, attempt=again.attempts)
    assert book.get(row).state == "decided"

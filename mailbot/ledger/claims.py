"""Claims on ledger rows (a mixin of `Ledger`): `claim()` takes the oldest due row for one
node, `recover()` at start and `reclaim_expired()` / `reclaim_dead()` at each cluster
heartbeat put rows a dead process had in hand back in line — or, at the MAX_ATTEMPTS-th
death with the same row in hand, quarantine it (docs/reliability.md, docs/cluster.md)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine

from mailbot.store.dbclock import database_now
from mailbot.store.schema import ledger

from .entry import ENTRY_COLUMNS, Entry, LedgerState, entry_of

MAX_ATTEMPTS = 3


def _like_prefix(text: str) -> str:
    """A LIKE pattern for values starting with `text` (its wildcards escaped with \\)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"



class Claims:
    engine: Engine

    def recover(self, holder: str | None = None) -> int:
        """At start: rows a crash of this node left in `processing` go back in line;
        returns how many.

        `holder` is this process's `node#incarnation` (mailbot/cluster): only the rows of
        earlier runs of the same node (and rows claimed before claims had holders) are
        this node's to recover — another live node's rows are its own, and a dead node's
        come back when their claim runs out (`reclaim_expired`). Without `holder` (one
        process, tests) every row in `processing` is recovered.

        A row that was in hand at MAX_ATTEMPTS crashes of the whole process (a segfault, an
        OOM kill) is quarantined instead: the pipeline never got to `fail()` it."""
        mine = [ledger.c.state == LedgerState.PROCESSING]
        if holder is not None:
            node = holder.split("#", 1)[0]
            mine.append(or_(ledger.c.claimed_by.is_(None),
                            ledger.c.claimed_by.like(_like_prefix(node + "#"), escape="\\")))
        return self._requeue(mine, "the process died while deciding this message")

    def reclaim_expired(self) -> int:
        """Rows whose claim ran out (their node stopped renewing it: killed, cut off) go
        back in line, or to quarantine at MAX_ATTEMPTS like `recover`; returns how many."""
        with self.engine.connect() as conn:
            now = database_now(conn)
        return self._requeue([ledger.c.state == LedgerState.PROCESSING,
                              ledger.c.claim_expires.is_not(None),
                              ledger.c.claim_expires < now],
                             "the node deciding this message stopped")

    def reclaim_dead(self, live: set[str]) -> int:
        """Rows in hand at a node whose node lease has run out (`live`: the holders of
        unexpired node leases) go back in line at once, without waiting for their claim to
        run out. A node that was only cut off and decides such a row anyway is refused by
        `decide()` (the attempt it claimed is no longer the row's)."""
        where = [ledger.c.state == LedgerState.PROCESSING, ledger.c.claimed_by.is_not(None)]
        if live:
            where.append(ledger.c.claimed_by.not_in(sorted(live)))
        return self._requeue(where, "the node deciding this message stopped")

    def _requeue(self, where: list[Any], why: str) -> int:
        with self.engine.begin() as conn:
            conn.execute(
                update(ledger)
                .where(*where, ledger.c.attempts >= MAX_ATTEMPTS)
                .values(state=LedgerState.QUARANTINED, claimed_by=None, claim_expires=None,
                        last_error=f"{why} {MAX_ATTEMPTS} times (killed or crashed)")
            )
            return conn.execute(
                update(ledger).where(*where)
                .values(state=LedgerState.RECEIVED, claimed_by=None, claim_expires=None)
            ).rowcount

    def renew_claims(self, holder: str, seconds: float,
                     ids: Collection[int] | None = None) -> int:
        """Push the claim expiry of the rows `holder` has in hand `seconds` ahead.

        `ids` are the rows the holder's pipeline really is deciding (`Pipeline.in_hand`):
        a row claimed by a commit whose answer the outage swallowed is the holder's in
        the ledger but in no pipeline's hand — left unrenewed, its claim runs out and it
        comes back in line (`reclaim_expired`) instead of staying `processing` for ever."""
        where = [ledger.c.state == LedgerState.PROCESSING, ledger.c.claimed_by == holder]
        if ids is not None:
            if not ids:
                return 0
            where.append(ledger.c.id.in_(sorted(ids)))
        with self.engine.begin() as conn:
            now = database_now(conn)
            return conn.execute(
                update(ledger).where(*where)
                .values(claim_expires=now + timedelta(seconds=seconds))
            ).rowcount

    def claim(self, *, now: datetime, holder: str | None = None,
              claim_seconds: float = 300.0) -> Entry | None:
        """The oldest received row that is due, now `processing` with its attempt counted.

        `now` is the caller's clock (the daemon's, a test's): a row deferred until after it
        (`defer()`) is left waiting. The claimed row's `not_before` is cleared; the entry
        returned still carries it and its `deferrals`. `holder` (a cluster node's
        `node#incarnation`) is recorded with a claim expiry `claim_seconds` ahead on the
        database's clock, which the holder's heartbeat renews (`renew_claims`). On
        PostgreSQL the row is picked `FOR UPDATE SKIP LOCKED`: nodes claiming at the same
        moment take different rows instead of waiting on each other."""
        due = or_(ledger.c.not_before.is_(None), ledger.c.not_before <= now)
        with self.engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            expires = (database_now(conn) + timedelta(seconds=claim_seconds)
                       if holder is not None else None)
            while True:
                pick = (select(*ENTRY_COLUMNS)
                        .where(ledger.c.state == LedgerState.RECEIVED, due)
                        .order_by(ledger.c.id)
                        .limit(1))
                if postgres:
                    pick = pick.with_for_update(skip_locked=True)
                row = conn.execute(pick).first()
                if row is None:
                    return None
                taken = conn.execute(
                    update(ledger)
                    .where(ledger.c.id == row.id, ledger.c.state == LedgerState.RECEIVED, due)
                    .values(state=LedgerState.PROCESSING, attempts=ledger.c.attempts + 1,
                            not_before=None, claimed_by=holder, claim_expires=expires)
                ).rowcount
                if taken:
                    entry = entry_of(row._mapping)
                    return Entry(**{**entry.__dict__, "state": LedgerState.PROCESSING,
                                    "attempts": entry.attempts + 1})


"""Lease rows: a name held by one holder until an expiry, renewed by the holder.

Why leases rather than PostgreSQL session advisory locks (docs/cluster.md): an advisory
lock lives as long as the server keeps the holder's session, which after a network
partition can be until TCP keepalive gives up (minutes to hours) — no takeover meanwhile —
and the holder cannot tell it lost the lock when a failover promotes a replica (advisory
locks are not replicated). A lease row is replicated with the rest of the data, has an
expiry every node can read, and its holder knows the moment it stops being sure: when it
could not renew before `expires_at`, it stops acting on the lease (self-fencing), so two
holders never act at once as long as the lease time is longer than a renewal's round trip.

Times are the database's (`database_now`): nodes' clocks may differ, the database's clock
is one. `token` grows at every change of holder: a fencing token a holder can check.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from mailbot.store.dbclock import database_now
from mailbot.store.schema import leases, utc


def incarnation(node: str) -> str:
    """This process's holder name: the node's, then 8 hex digits of its own."""
    return f"{node}#{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Lease:
    """A lease this holder has: until when (database clock) and its fencing token."""

    name: str
    token: int
    expires_at: datetime
    tick: str | None = None


@dataclass(frozen=True)
class LeaseRow:
    """A lease as `mailbot status` shows it."""

    name: str
    holder: str
    token: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    tick: str | None
    done: bool
    now: datetime  # the database's clock when it was read

    @property
    def node(self) -> str:
        return self.holder.split("#", 1)[0]

    @property
    def expired(self) -> bool:
        return self.expires_at <= self.now


class Leases:
    """The leases of one holder (`holder`: node#incarnation) held for `seconds`."""

    def __init__(self, engine: Engine, holder: str, seconds: float) -> None:
        self.engine = engine
        self.holder = holder
        self.seconds = seconds

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def hold(self, name: str, place: str | None = None) -> Lease | None:
        """Take `name` if it is free or expired, or renew it if it is ours; None when
        another holder has it. With `place` (a node lease: this host and working folder,
        whose lock this process holds), a lease held by an earlier run in the same place is
        taken at once: that run is dead, or the folder's lock would not be ours."""
        with self.engine.begin() as conn:
            now = database_now(conn)
            row = conn.execute(select(leases).where(leases.c.name == name)
                               .with_for_update()).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(leases).values(
                            name=name, holder=self.holder, token=1, acquired_at=now,
                            renewed_at=now, expires_at=now + self.ttl, done=False,
                            place=place))
                except IntegrityError:  # another node inserted it at the same moment
                    return None
                return Lease(name, 1, now + self.ttl)
            ours = row.holder == self.holder
            same_place = place is not None and row.place == place
            if not ours and not same_place and utc(row.expires_at) > now:
                return None
            token = row.token if ours else row.token + 1
            values: dict[str, object] = {"holder": self.holder, "token": token,
                                         "renewed_at": now, "expires_at": now + self.ttl}
            if not ours:
                values["acquired_at"] = now
            if place is not None:
                values["place"] = place
            conn.execute(update(leases).where(leases.c.name == name).values(**values))
            return Lease(name, token, now + self.ttl, row.tick)

    def renew_all(self) -> list[Lease]:
        """Renew every unexpired lease this holder has; returns them (a lease that had
        expired is not renewed: another node may have it or take it)."""
        with self.engine.begin() as conn:
            now = database_now(conn)
            rows = conn.execute(
                update(leases)
                .where(leases.c.holder == self.holder, leases.c.expires_at > now)
                .values(renewed_at=now, expires_at=now + self.ttl)
                .returning(leases.c.name, leases.c.token, leases.c.expires_at, leases.c.tick)
            ).all()
        return [Lease(r.name, r.token, utc(r.expires_at), r.tick) for r in rows]

    def release(self, name: str) -> None:
        """Give `name` up now (a clean stop): another node need not wait for the expiry."""
        with self.engine.begin() as conn:
            now = database_now(conn)
            conn.execute(update(leases)
                         .where(leases.c.name == name, leases.c.holder == self.holder)
                         .values(expires_at=now))

    def end_earlier_runs(self, node: str) -> int:
        """End the leases of earlier runs of `node` (holders `node#…` but this one): once
        this process holds `node:<node>`, they are dead, and their mailboxes and job runs
        need not wait for their expiry."""
        prefix = f"{node}#"
        with self.engine.begin() as conn:
            now = database_now(conn)
            return conn.execute(
                update(leases)
                .where(func.substr(leases.c.holder, 1, len(prefix)) == prefix,
                       leases.c.holder != self.holder, leases.c.expires_at > now)
                .values(expires_at=now)
            ).rowcount

    def live_holders(self) -> set[str]:
        """The holders of unexpired node leases: the nodes alive now."""
        with self.engine.connect() as conn:
            now = database_now(conn)
            return set(conn.execute(select(leases.c.holder).where(
                leases.c.name.like("node:%"), leases.c.expires_at > now)).scalars())

    # -- once per tick ----------------------------------------------------------------
    def start_tick(self, name: str, tick: str) -> Lease | None:
        """Take job lease `name` for run `tick` (ticks of a job compare as strings in time
        order): when no run of it is going on (the last one finished, or its holder stopped
        renewing) and `tick` is newer than the last finished one — or is the same run,
        left unfinished by a holder that died. None: another node runs or ran it."""
        with self.engine.begin() as conn:
            now = database_now(conn)
            free = or_(leases.c.done.is_(True), leases.c.expires_at <= now)
            newer = or_(leases.c.tick.is_(None), leases.c.tick < tick,
                        and_(leases.c.tick == tick, leases.c.done.is_(False)))
            taken = conn.execute(
                update(leases).where(leases.c.name == name, free, newer)
                .values(holder=self.holder, token=leases.c.token + 1, acquired_at=now,
                        renewed_at=now, expires_at=now + self.ttl, tick=tick, done=False)
                .returning(leases.c.token)
            ).first()
            if taken is not None:
                return Lease(name, taken.token, now + self.ttl, tick)
            exists = conn.execute(select(leases.c.name).where(leases.c.name == name)).first()
            if exists is not None:
                return None
            try:
                with conn.begin_nested():
                    conn.execute(insert(leases).values(
                        name=name, holder=self.holder, token=1, acquired_at=now,
                        renewed_at=now, expires_at=now + self.ttl, tick=tick, done=False))
            except IntegrityError:
                return None
            return Lease(name, 1, now + self.ttl, tick)

    def finish_tick(self, lease: Lease) -> bool:
        """Mark the run `lease` took as finished; False when the lease was lost meanwhile
        (another node took the run over)."""
        with self.engine.begin() as conn:
            now = database_now(conn)
            return bool(conn.execute(
                update(leases).where(leases.c.name == lease.name,
                                     leases.c.holder == self.holder,
                                     leases.c.token == lease.token)
                .values(done=True, renewed_at=now, expires_at=now)
            ).rowcount)

    def unfinished(self, name: str) -> str | None:
        """The tick of job `name` left unfinished by a holder that stopped renewing."""
        with self.engine.begin() as conn:
            now = database_now(conn)
            row = conn.execute(select(leases.c.tick).where(
                leases.c.name == name, leases.c.done.is_(False),
                leases.c.expires_at <= now)).first()
        return row.tick if row is not None else None


def lease_rows(engine: Engine) -> list[LeaseRow]:
    """Every lease, for `mailbot status` and the metrics."""
    with engine.connect() as conn:
        now = database_now(conn)
        rows = conn.execute(select(leases).order_by(leases.c.name)).all()
    return [LeaseRow(r.name, r.holder, r.token, utc(r.acquired_at), utc(r.renewed_at),
                     utc(r.expires_at), r.tick, bool(r.done), now) for r in rows]

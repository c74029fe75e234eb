"""The guarantee store: open a database, apply history events, read versions back.

`Store.open(url)` migrates the schema and loads the key-hashing secret; `apply(events)` adds
new / amendment / correction / cancellation events in order inside one transaction (all or
nothing, errors name the event's source line) and skips events already imported; `versions`
returns a guarantee's history for verification. Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from mailbot.errors import UsageError
from parsers.normalize import name_key

from .existing import create_private
from .migrate import upgrade
from .model import VERSION_FIELDS, GuaranteeEvent
from .schema import guarantees, key_failures, versions
from .secret import check_secret, derive_key, key_hash, load_secret

CHUNK = 500


class StoreError(Exception):
    """Events that cannot be applied; nothing was written."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Version:
    """One version of a guarantee as stored (the key only as its HMAC)."""

    guarantee_number: str
    version: int
    event: str
    change_no: int | None
    key_hash: str
    kind: str | None
    issuer: str | None
    contractor: str | None
    project_name: str | None
    jv_name: str | None
    contract_amount: int | None
    guaranteed_amount: int | None
    bank: str | None
    term_start: date | None
    term_end: date | None
    expires_on: date | None
    contract_date: date | None
    awarded_on: date | None
    surety: str | None
    issued_at: datetime | None
    low_bid: bool
    contract_key: str
    recorded_at: datetime | None = None  # when this version entered the store


_VERSION_COLUMNS = [versions.c[f.name] for f in fields(Version)]
_LATEST_JOIN = (guarantees.c.guarantee_number == versions.c.guarantee_number) & (
    guarantees.c.latest_version == versions.c.version
)
# Built once: constructing SQLAlchemy expressions costs more than running them.
_VERSIONS = (
    select(*_VERSION_COLUMNS)
    .where(versions.c.guarantee_number == bindparam("number"))
    .order_by(versions.c.version)
)
_CONTRACT = (
    select(*_VERSION_COLUMNS)
    .join(guarantees, _LATEST_JOIN)
    .where(versions.c.contract_key == bindparam("key"))
)
_FAIL_N = and_(
    key_failures.c.scope == "number",
    key_failures.c.subject == bindparam("n"),
    key_failures.c.at >= bindparam("n_since"),
)
_FAIL_S = and_(
    key_failures.c.scope == "sender",
    key_failures.c.subject == bindparam("s"),
    key_failures.c.at >= bindparam("s_since"),
)
_SET_LATEST = (
    update(guarantees)
    .where(guarantees.c.guarantee_number == bindparam("n"))
    .values(latest_version=bindparam("v"))
)
# The failures recorded before one of them (its id): each failure has its own place in line,
# so concurrent pipelines agree on which one crossed a limit.
_BEFORE_N = and_(_FAIL_N, key_failures.c.id < bindparam("n_before"))
_BEFORE_S = and_(_FAIL_S, key_failures.c.id < bindparam("s_before"))
_FAILURES_N = select(func.count()).where(_FAIL_N)
_FAILURES_NS = select(
    func.coalesce(func.sum(case((_FAIL_N, 1), else_=0)), 0),
    func.coalesce(func.sum(case((_FAIL_S, 1), else_=0)), 0),
).where(or_(_FAIL_N, _FAIL_S))
_BEFORE_NS = select(
    func.coalesce(func.sum(case((_BEFORE_N, 1), else_=0)), 0),
    func.coalesce(func.sum(case((_BEFORE_S, 1), else_=0)), 0),
).where(or_(_BEFORE_N, _BEFORE_S))


def _insert_failure(conn: Connection, scope: str, subject: str, at: datetime) -> int:
    key = conn.execute(insert(key_failures).values(scope=scope, subject=subject, at=at)
                       ).inserted_primary_key
    assert key is not None
    return int(key[0])


@dataclass
class ApplyReport:
    added: int = 0
    skipped: int = 0


def contract_key(issuer: str | None, project: str | None, contractor: str | None) -> str:
    """A stable hash of the normalised names that identify one construction contract."""
    text = "|".join(name_key(v or "") for v in (issuer, project, contractor))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store:
    def __init__(self, engine: Engine, secret: bytes) -> None:
        self.engine = engine
        self._secret = secret

    @classmethod
    def open(cls, url: str, secret: bytes | None = None, secret_file: Path | None = None
             ) -> Store:
        """The store at `url`, migrated; `secret` given, or found (`load_secret`, with the
        config's `secret_file`) before the database is touched."""
        if secret is None:
            secret = load_secret(url, secret_file)
        create_private(url)
        # hide_parameters: an error's text (logged whole by log.exception) never shows a
        # statement's values: a Subject or a rendered reply may hold a clear key.
        engine = create_engine(url, future=True, hide_parameters=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        try:
            upgrade(engine)
        except (OperationalError, InterfaceError) as exc:
            engine.dispose()
            shown = engine.url.render_as_string(hide_password=True)
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise UsageError(f"cannot open the store {shown}: {reason}") from None
        try:
            check_secret(engine, secret)
        except UsageError:
            engine.dispose()
            raise
        return cls(engine, secret)

    def close(self) -> None:
        self.engine.dispose()

    def analyze(self) -> None:
        """Refresh the planner statistics: after a large import PostgreSQL would otherwise
        plan the contract lookups as sequential scans until autovacuum comes round."""
        with self.engine.begin() as conn:
            conn.execute(text("ANALYZE"))

    def hash_key(self, auth_key: str) -> str:
        return key_hash(self._secret, auth_key)

    def derived_key(self, purpose: str) -> bytes:
        """A key of the store's secret for one other use (`secret.derive_key`)."""
        return derive_key(self._secret, purpose)

    # -- reading -------------------------------------------------------------------
    def versions(self, number: str, conn: Connection | None = None) -> list[Version]:
        """All versions of `number`, oldest first (empty if the number is unknown)."""
        with self._connection(conn) as c:
            return [Version(**row._mapping) for row in c.execute(_VERSIONS, {"number": number})]

    @contextmanager
    def _connection(self, conn: Connection | None) -> Iterator[Connection]:
        """The caller's connection, or a short-lived one of our own."""
        if conn is not None:
            yield conn
        else:
            with self.engine.connect() as own:
                yield own

    def latest_of_contract(self, key: str, conn: Connection | None = None) -> list[Version]:
        """The latest version of every guarantee of one contract (same issuer/project/contractor)."""
        with self._connection(conn) as c:
            return [Version(**row._mapping) for row in c.execute(_CONTRACT, {"key": key})]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(guarantees)).scalar_one()

    # -- throttle ------------------------------------------------------------------
    def record_key_failure(self, scope: str, subject: str, at: datetime) -> int:
        """Record one failed key check (`scope` "number" or "sender"); returns its id."""
        with self.engine.begin() as conn:
            return _insert_failure(conn, scope, subject, at)

    def record_key_failures(self, number: str, sender: str | None, at: datetime
                            ) -> tuple[int, int]:
        """Record a failed key check for `number` and from `sender` in one transaction;
        returns the two rows' ids (0 for no sender), for `key_failures_since(before=...)`."""
        with self.engine.begin() as conn:
            ids = [_insert_failure(conn, scope, subject, at)
                   for scope, subject in (("number", number), ("sender", sender)) if subject]
        return ids[0], (ids[1] if len(ids) > 1 else 0)

    def key_failures_since(
        self,
        number: str,
        number_since: datetime,
        sender: str | None = None,
        sender_since: datetime | None = None,
        conn: Connection | None = None,
        before: tuple[int, int] | None = None,
    ) -> tuple[int, int]:
        """Failed key checks for `number` and from `sender` since each window's start;
        with `before` (the ids `record_key_failures` gave), only those recorded before."""
        params = {"n": number, "n_since": number_since, "s": sender or "",
                  "s_since": sender_since or number_since}
        if before is not None:
            params |= {"n_before": before[0], "s_before": before[1]}
        with self._connection(conn) as c:
            if sender is None:
                query = _FAILURES_N if before is None else select(func.count()).where(_BEFORE_N)
                return int(c.execute(query, params).scalar_one()), 0
            n_count, s_count = c.execute(_FAILURES_NS if before is None else _BEFORE_NS,
                                         params).one()
        return int(n_count), int(s_count)

    # -- writing -------------------------------------------------------------------
    def apply(
        self,
        events: Iterable[GuaranteeEvent],
        progress: Callable[[int], None] | None = None,
    ) -> ApplyReport:
        """Apply events in order in one transaction; raise StoreError (writing nothing)."""
        report = ApplyReport()
        errors: list[str] = []
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            batch: list[GuaranteeEvent] = []
            for item in events:
                batch.append(item)
                if len(batch) >= CHUNK:
                    self._apply_chunk(conn, batch, now, report, errors)
                    if progress:
                        progress(len(batch))
                    batch = []
            if batch:
                self._apply_chunk(conn, batch, now, report, errors)
                if progress:
                    progress(len(batch))
            if errors:
                conn.rollback()
                raise StoreError(errors)
        return report

    def _apply_chunk(
        self,
        conn: Connection,
        batch: Sequence[GuaranteeEvent],
        now: datetime,
        report: ApplyReport,
        errors: list[str],
    ) -> None:
        numbers = {e.guarantee_number for e in batch}
        latest = self._latest_rows(conn, numbers)
        seen_hashes = self._row_hashes(conn, numbers)
        new_numbers: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for item in batch:
            row_hash = self._row_hash(item)
            number = item.guarantee_number
            if row_hash in seen_hashes.get(number, set()):
                report.skipped += 1
                continue
            previous = latest.get(number)
            problem = _check_event(item, previous)
            if problem:
                errors.append(f"{item.source or number}: {problem}")
                continue
            values = self._version_values(item, previous, row_hash, now)
            if previous is None:
                new_numbers.append(
                    {"guarantee_number": number, "latest_version": 1, "created_at": now}
                )
            rows.append(values)
            latest[number] = Version(**{f.name: values[f.name] for f in fields(Version)})
            seen_hashes.setdefault(number, set()).add(row_hash)
            report.added += 1
        if errors or not rows:
            return  # the transaction will be rolled back: spare the writes
        if new_numbers:
            conn.execute(insert(guarantees), new_numbers)
        conn.execute(insert(versions), rows)
        moved = [
            {"n": v.guarantee_number, "v": v.version}
            for v in latest.values()
            if v.version > 1 and v.guarantee_number in numbers
        ]
        if moved:
            conn.execute(_SET_LATEST, moved)

    def _latest_rows(self, conn: Connection, numbers: set[str]) -> dict[str, Version]:
        query = (
            select(*_VERSION_COLUMNS)
            .join(guarantees, _LATEST_JOIN)
            .where(versions.c.guarantee_number.in_(numbers))
        )
        return {row.guarantee_number: Version(**row._mapping) for row in conn.execute(query)}

    def _row_hashes(self, conn: Connection, numbers: set[str]) -> dict[str, set[str]]:
        query = select(versions.c.guarantee_number, versions.c.row_hash).where(
            versions.c.guarantee_number.in_(numbers)
        )
        out: dict[str, set[str]] = {}
        for number, row_hash in conn.execute(query):
            out.setdefault(number, set()).add(row_hash)
        return out

    def _row_hash(self, item: GuaranteeEvent) -> str:
        data = asdict(replace(item, source="", auth_key=None))
        data["key"] = self.hash_key(item.auth_key) if item.auth_key else None
        text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _version_values(
        self, item: GuaranteeEvent, previous: Version | None, row_hash: str, now: datetime
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in VERSION_FIELDS:
            new = getattr(item, name)
            values[name] = new if new is not None or previous is None else getattr(previous, name)
        if item.event == "cancellation" or not item.auth_key:
            assert previous is not None  # _check_event guarantees it
            values["key_hash"] = previous.key_hash
        else:
            values["key_hash"] = self.hash_key(item.auth_key)
        values.update(
            guarantee_number=item.guarantee_number,
            version=(previous.version + 1) if previous else 1,
            event=item.event,
            change_no=item.change_no,
            contract_key=contract_key(
                values["issuer"], values["project_name"], values["contractor"]
            ),
            row_hash=row_hash,
            source=item.source,
            recorded_at=now,
            low_bid=bool(values["low_bid"]),
        )
        return values


def _check_event(item: GuaranteeEvent, previous: Version | None) -> str | None:
    """Why `item` cannot follow `previous`, in one sentence; None when it can."""
    if item.event == "new":
        if previous is not None:
            return f"guarantee {item.guarantee_number} already exists (use 変更 or 訂正)"
        if not item.auth_key:
            return "a 新規 guarantee needs its 認証キー"
        return None
    if previous is None:
        return f"guarantee {item.guarantee_number} is not in the store (a 新規 row must come first)"
    if previous.event == "cancellation":
        return f"guarantee {item.guarantee_number} is cancelled (取消); nothing can follow"
    return None

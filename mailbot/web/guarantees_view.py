"""What the 電子保証 pages read: a guarantee's history and the mails that cited it.

A guarantee's versions are read with their fields, event, source and when they were
recorded — never `key_hash`, `row_hash` or `contract_key`: nothing derived from a key
reaches a page. A guarantee belongs to an issuer by the issuer name of its latest version
(`Scope.sees_guarantee_issuer`); outside the scope it is answered as if it did not exist.
The citing mails are `ledger_notices` rows joined to `ledger` under `Scope.ledger_clause()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from mailbot.store import EVENTS
from mailbot.store.schema import guarantees, ledger, ledger_notices, utc, versions
from parsers.normalize import canonical_number

from .scope import Scope

EVENTS_JA = {code: word for word, code in EVENTS.items()}
#: Version fields shown, in the order of the import file's columns, with their headers.
FIELDS_JA: tuple[tuple[str, str], ...] = (
    ("kind", "商品名"), ("issuer", "発注者名"), ("contractor", "請負契約者"),
    ("project_name", "工事名"), ("jv_name", "JV名"), ("contract_amount", "請負金額"),
    ("guaranteed_amount", "保証金額"), ("bank", "預託金融機関"), ("term_start", "工期開始"),
    ("term_end", "工期終了"), ("expires_on", "保証期限"), ("contract_date", "請負契約日"),
    ("awarded_on", "落札日"), ("surety", "保証事業会社"), ("issued_at", "電子保証発行日時"),
    ("low_bid", "低入札"),
)
_COLUMNS = [versions.c[name] for name, _ in FIELDS_JA] + [
    versions.c.version, versions.c.event, versions.c.change_no, versions.c.source,
    versions.c.recorded_at]
MAX_CITING = 200
MAX_FOUND = 50


@dataclass(frozen=True)
class VersionView:
    version: int
    event: str  # 新規 / 変更 / 訂正 / 取消
    change_no: int | None
    recorded_at: datetime | None
    source: str
    fields: tuple[tuple[str, str], ...]  # (header, shown value), empty values left out


@dataclass(frozen=True)
class CitingMail:
    ledger_id: int
    received_at: datetime
    sender: str
    subject: str
    state: str
    project_name: str
    contractor: str


@dataclass(frozen=True)
class Found:
    number: str
    issuer: str
    project_name: str
    event: str


def shown(value: Any) -> str:
    """A version field as the page shows it: yen with separators, ISO dates, はい/いいえ."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    if isinstance(value, int):
        return f"{value:,}円"
    if isinstance(value, datetime):
        from .format import jst
        return jst(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def history(conn: Connection, number: str) -> list[VersionView]:
    """Every version of `number`, oldest first (empty when unknown)."""
    rows = conn.execute(select(*_COLUMNS).where(versions.c.guarantee_number == number)
                        .order_by(versions.c.version))
    out = []
    for row in rows:
        values = row._mapping
        fields = tuple((label, shown(values[name])) for name, label in FIELDS_JA
                       if values[name] is not None and not (name == "low_bid"
                                                            and not values[name]))
        out.append(VersionView(
            version=row.version, event=EVENTS_JA.get(row.event, row.event),
            change_no=row.change_no,
            recorded_at=utc(row.recorded_at) if row.recorded_at else None,
            source=row.source or "", fields=fields))
    return out


def latest_issuer(conn: Connection, number: str) -> tuple[bool, str | None]:
    """(whether `number` is in the store, the issuer name of its latest version)."""
    row = conn.execute(select(versions.c.issuer).join(guarantees, and_(
        guarantees.c.guarantee_number == versions.c.guarantee_number,
        guarantees.c.latest_version == versions.c.version))
        .where(guarantees.c.guarantee_number == number)).first()
    return (row is not None, row.issuer if row is not None else None)


def visible(conn: Connection, scope: Scope, number: str) -> bool:
    exists, issuer = latest_issuer(conn, number)
    return exists and scope.sees_guarantee_issuer(issuer)


def citing_mails(conn: Connection, scope: Scope, number: str) -> list[CitingMail]:
    """The mails in scope whose decision read a notice of `number`, newest first."""
    query = (select(ledger.c.id, ledger.c.received_at, ledger.c.sender, ledger.c.subject,
                    ledger.c.state, ledger_notices.c.project_name, ledger_notices.c.contractor)
             .join(ledger, ledger.c.id == ledger_notices.c.ledger_id)
             .where(ledger_notices.c.guarantee_number == number, scope.ledger_clause())
             .order_by(ledger.c.id.desc()).limit(MAX_CITING * 4))
    out: list[CitingMail] = []
    seen: set[int] = set()
    for row in conn.execute(query):
        if row.id in seen:  # one mail with the notice twice (two PDFs of one guarantee)
            continue
        seen.add(row.id)
        out.append(CitingMail(row.id, utc(row.received_at), row.sender or "", row.subject or "",
                              row.state, row.project_name or "", row.contractor or ""))
        if len(out) >= MAX_CITING:
            break
    return out


def search(conn: Connection, scope: Scope, text: str) -> tuple[str | None, list[Found]]:
    """(the canonical number of `text` if it is one, guarantees in scope whose number starts
    with what was typed), at most `MAX_FOUND`."""
    typed = text.strip()
    number = canonical_number(typed) if typed else None
    prefix = (number or typed.upper())[:40]
    if not prefix:
        return number, []
    query = (select(versions.c.guarantee_number, versions.c.issuer, versions.c.project_name,
                    versions.c.event)
             .join(guarantees, and_(
                 guarantees.c.guarantee_number == versions.c.guarantee_number,
                 guarantees.c.latest_version == versions.c.version))
             .where(guarantees.c.guarantee_number.startswith(prefix, autoescape=True))
             .order_by(guarantees.c.guarantee_number).limit(MAX_FOUND))
    if scope.issuer_names is not None:
        query = query.where(versions.c.issuer.in_(sorted(scope.issuer_names)))
    return number, [Found(r.guarantee_number, r.issuer or "", r.project_name or "",
                          EVENTS_JA.get(r.event, r.event)) for r in conn.execute(query)]

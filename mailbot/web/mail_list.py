"""What 受付一覧 reads: every received mail in the account's scope, newest first, filtered
and searched, one keyset page at a time.

The order is (received_at, id) descending and a page ends with an opaque cursor naming its
last row: the next page is the rows strictly after it, so mail that arrives meanwhile (it is
newer) neither shifts nor repeats a row, and no OFFSET is ever counted through. Filters use
the ledger's listing columns (`status`, `outcomes`, `folder`: migration 0011) and
`ledger_notices`, never a decision's JSON. A search is a 保証契約番号 when it reads as one
(exact match on the indexed `ledger_notices.guarantee_number`), else a part of a 工事名, a
contractor or the sender (LIKE, with the wildcards of what was typed escaped).

`page_query()` is the one SELECT of a page (the bench measures it bare against the page).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, false, func, literal, or_, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from mailbot.config import Config
from mailbot.ledger import LedgerState
from mailbot.store.schema import ledger, ledger_notices, utc
from parsers.normalize import canonical_number

from .codes import CODES, code_choices, code_ja
from .format import TOKYO
from .redact import mask_key_like
from .scope import Scope

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ID = 2**63 - 1  # the largest id either database's BIGINT holds
MAX_QUERY = 100
STATES_JA: dict[str, str] = {"decided": "判定済", "review": "要確認", "quarantined": "隔離",
                             "duplicate": "重複", "pending": "未処理"}
LISTED = [ledger.c.id, ledger.c.received_at, ledger.c.mailbox, ledger.c.sender,
          ledger.c.subject, ledger.c.state, ledger.c.status, ledger.c.outcomes,
          ledger.c.copy_of]


_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def without_bidi(text: str) -> str:
    """`text` with each bidirectional control shown as U+FFFD: a sender's U+202E would show
    a forged address (reversed) on the page. Replaced, not dropped, so that no two halves of
    a key join after the masking."""
    return _BIDI.sub("\ufffd", text)


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class BadQuery(ValueError):
    """A parameter the list cannot use; the message is Japanese, for the page."""


@dataclass(frozen=True)
class Cursor:
    """The last row of a page: the next page starts strictly after it."""

    received_at: datetime
    id: int

    def encode(self) -> str:
        micros = (utc(self.received_at) - EPOCH) // timedelta(microseconds=1)
        return base64.urlsafe_b64encode(f"{micros}.{self.id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
            micros, row_id = (int(part) for part in raw.split("."))
            at = EPOCH + timedelta(microseconds=micros)
        except (ValueError, binascii.Error, OverflowError, UnicodeDecodeError) as exc:
            raise BadQuery("ページの指定が正しくありません。一覧の先頭から開き直してください。") from exc
        if not 0 < row_id <= MAX_ID:
            raise BadQuery("ページの指定が正しくありません。一覧の先頭から開き直してください。")
        return cls(at, row_id)


@dataclass(frozen=True)
class Choices:
    """What the filters offer this account: only what its scope holds."""

    mailboxes: tuple[str, ...]
    issuers: tuple[tuple[str, str], ...]  # ([issuers.ID], name)
    review_folders: Mapping[str, str]  # mailbox → its review folder
    issuer_mailboxes: Mapping[str, tuple[str, ...]]  # [issuers.ID] → its own mailboxes
    states: tuple[tuple[str, str], ...] = tuple(STATES_JA.items())
    outcomes: tuple[tuple[str, str], ...] = ()


def choices(config: Config, scope: Scope) -> Choices:
    boxes = tuple(m.name for m in config.mailboxes
                  if m.name in scope.issuer_mailboxes or m.name in scope.contractor_mailboxes)
    issuers = tuple((key, policy.name or key) for key, policy in config.issuers.items()
                    if scope.sees_issuer(key))
    own = {key: tuple(m.name for m in config.mailboxes if m.issuer == key)
           for key, _name in issuers}
    return Choices(boxes, issuers, {m.name: m.review_folder for m in config.mailboxes},
                   own, outcomes=tuple(code_choices()))


@dataclass(frozen=True)
class Filters:
    """The list's parameters as typed (kept for the form and the next page's link)."""

    mailbox: str = ""
    issuer: str = ""
    state: str = ""
    outcome: str = ""
    date_from: str = ""
    date_to: str = ""
    q: str = ""

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Filters:
        def one(name: str, limit: int = 60) -> str:
            # Control characters out: PostgreSQL refuses a NUL in a query's text.
            return _CONTROLS.sub(" ", str(params.get(name, ""))).strip()[:limit]

        return cls(one("mailbox", 120), one("issuer", 120), one("state"), one("outcome"),
                   one("from", 10), one("to", 10), one("q", MAX_QUERY))

    def params(self) -> dict[str, str]:
        given = {"mailbox": self.mailbox, "issuer": self.issuer, "state": self.state,
                 "outcome": self.outcome, "from": self.date_from, "to": self.date_to,
                 "q": self.q}
        return {k: v for k, v in given.items() if v}


@dataclass(frozen=True)
class MailRow:
    id: int
    received_at: datetime
    mailbox: str
    sender: str
    subject: str
    state: str
    duplicate: bool
    outcomes: tuple[str, ...]  # Japanese labels of the decision's outcome and problem codes
    numbers: tuple[str, ...]  # the guarantee numbers its notices cite


@dataclass(frozen=True)
class Page:
    rows: tuple[MailRow, ...]
    next: Cursor | None  # None on the last page


def _day(text: str, label: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise BadQuery(f"{label}は 2026-12-01 のように年-月-日で入力してください。") from exc


def _jst_midnight(day: date) -> datetime:
    try:
        return datetime.combine(day, time(0), TOKYO).astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01 JST is still year 0 in UTC
        raise BadQuery("受信日が扱える範囲の外です。2026-12-01 のような年-月-日で入力してください。") from exc


def conditions(filters: Filters, scope: Scope, offered: Choices) -> list[ColumnElement[bool]]:
    """The WHERE of the list: the scope first, then each filter; `BadQuery` for a value the
    form never offers this account."""
    where: list[ColumnElement[bool]] = [scope.ledger_clause()]
    if filters.mailbox:
        if filters.mailbox not in offered.mailboxes:
            raise BadQuery("この受信箱は選べません。")
        where.append(ledger.c.mailbox == filters.mailbox)
    if filters.issuer:
        own = offered.issuer_mailboxes.get(filters.issuer)
        if own is None:
            raise BadQuery("この発注者は選べません。")
        where.append(or_(ledger.c.issuer == filters.issuer,
                         and_(ledger.c.issuer.is_(None), ledger.c.mailbox.in_(own))
                         if own else false()))
    if filters.state:
        where.append(_state(filters.state, offered))
    if filters.outcome:
        if filters.outcome not in CODES:
            raise BadQuery("この判定結果は選べません。")
        where.append(ledger.c.outcomes.like(f"% {filters.outcome} %"))
    first, last = _day(filters.date_from, "受信日（から）"), _day(filters.date_to, "受信日（まで）")
    if first and last and first > last:
        raise BadQuery("受信日の範囲が逆です（「から」が「まで」より後です）。")
    if first:
        where.append(ledger.c.received_at >= _jst_midnight(first))
    if last:
        if last == date.max:
            raise BadQuery("受信日が扱える範囲の外です。2026-12-01 のような年-月-日で入力してください。")
        where.append(ledger.c.received_at < _jst_midnight(last + timedelta(days=1)))
    if filters.q:
        where.append(_search(filters.q))
    return where


def _state(state: str, offered: Choices) -> ColumnElement[bool]:
    if state == "decided":
        return ledger.c.state.in_((LedgerState.DECIDED, LedgerState.REPLIED))
    if state == "review":
        return or_(false(), *(and_(ledger.c.mailbox == box, ledger.c.folder == folder)
                              for box, folder in offered.review_folders.items()))
    if state == "quarantined":
        return ledger.c.state == LedgerState.QUARANTINED
    if state == "duplicate":
        return or_(ledger.c.status == "duplicate", ledger.c.copy_of.is_not(None))
    if state == "pending":
        return ledger.c.state.in_((LedgerState.RECEIVED, LedgerState.PROCESSING))
    raise BadQuery("この状態は選べません。")


def _search(typed: str) -> ColumnElement[bool]:
    number = canonical_number(typed)
    if number is not None:
        return ledger.c.id.in_(select(ledger_notices.c.ledger_id)
                               .where(ledger_notices.c.guarantee_number == number))
    named = select(ledger_notices.c.ledger_id).where(or_(
        ledger_notices.c.project_name.contains(typed, autoescape=True),
        ledger_notices.c.contractor.contains(typed, autoescape=True)))
    return or_(ledger.c.id.in_(named),
               func.lower(ledger.c.sender).contains(typed.lower(), autoescape=True))


def page_query(where: list[ColumnElement[bool]], after: Cursor | None,
               limit: int = PAGE_SIZE) -> Select[Any]:
    """The page's one SELECT: `limit` + 1 rows (the extra one says a next page exists)."""
    query = select(*LISTED).where(*where)
    if after is not None:
        # A row value, so that both databases seek in `ix_ledger_received`.
        query = query.where(tuple_(ledger.c.received_at, ledger.c.id)
                            < tuple_(literal(after.received_at, ledger.c.received_at.type),
                                     literal(after.id)))
    return query.order_by(ledger.c.received_at.desc(), ledger.c.id.desc()).limit(limit + 1)


# Decisions that masked the notices' keys in the ledger's subject (the issuer side's own
# decision); for any other row (not decided yet, a copy, the contractor side) it is as it came.
MASKED_BY_DECISION = frozenset({"verified", "discrepancy"})


def _shown(text: str | None, status: str | None) -> str:
    """A listing column as shown: as the decision masked it, else with every word that
    could be a key masked here."""
    shown = (text or "") if status in MASKED_BY_DECISION else mask_key_like(text or "")
    return without_bidi(shown)


def list_page(conn: Connection, where: list[ColumnElement[bool]], after: Cursor | None,
              limit: int = PAGE_SIZE) -> Page:
    rows = conn.execute(page_query(where, after, limit)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    numbers: dict[int, list[str]] = {}
    if rows:
        cited = (select(ledger_notices.c.ledger_id, ledger_notices.c.guarantee_number)
                 .where(ledger_notices.c.ledger_id.in_([r.id for r in rows]))
                 .order_by(ledger_notices.c.id))
        for ledger_id, number in conn.execute(cited):
            if number not in numbers.setdefault(ledger_id, []):
                numbers[ledger_id].append(number)
    out = tuple(MailRow(
        id=r.id, received_at=utc(r.received_at), mailbox=r.mailbox,
        # No decision masks the sender: every word that could be a key is masked here.
        sender=without_bidi(mask_key_like(r.sender or "")), subject=_shown(r.subject, r.status),
        state=r.state,
        duplicate=r.status == "duplicate" or r.copy_of is not None,
        outcomes=tuple(code_ja(c) for c in (r.outcomes or "").split()),
        numbers=tuple(numbers.get(r.id, ()))) for r in rows)
    last = rows[-1] if rows else None
    return Page(out, Cursor(utc(last.received_at), last.id) if more and last else None)

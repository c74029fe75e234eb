"""What the 提出状況 pages read: the contractor side's submissions (`submissions`), newest
first in keyset pages, and one submission with its timeline and the issuer's answer.

A submission belongs to the contractor side through its notice mail (`submissions.ledger_id`
→ `ledger.mailbox`): it is seen only by an account whose scope has that mailbox among its
contractor mailboxes, and under `Scope.ledger_clause()`. Nothing here reads
`notice_hash` (a keyed hash of the key); submission rows hold no key, and the answer JSON
(`mailbot.pipeline.contractor`) holds the answer's subject and sender, never a body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from mailbot.config import Config
from mailbot.ledger import entry_by_id
from mailbot.pipeline.contractor import VERDICT_JA
from mailbot.store.schema import ledger, outbox, submissions, utc
from mailbot.submit.staff import STATE_JA
from parsers.normalize import canonical_number

from .scope import Scope

PAGE_SIZE = 50
#: The states the list filters by, in the order of a submission's life.
STATES = ("queued", "sent", "confirmed", "discrepancy", "answered", "unroutable", "failed")
STATES_JA = {state: STATE_JA[state] for state in STATES}
#: How an answer was tied to its submission (`mailbot.submit.track.Match.how`).
MATCHED_BY_JA = {
    "thread": "提出メールへの返信",
    "earlier-thread": "再提出前の提出メールへの返信",
    "number": "発注者のドメインから、保証契約番号で照合",
    "bounce-token": "提出メールごとの返送先アドレスで確認",
}
ANSWER_JA = {**VERDICT_JA, "unauthenticated": "発注者からと確認できない返信（状態は変えていません）"}
OUTBOX_STATES_JA = {"queued": "送信待ち", "sent": "送信済", "failed": "送信失敗", "cancelled": "取消"}
FOUND_BY_JA = {"store": "保証データ", "text": "メール本文", "project": "工事名の規則"}
_LIST_COLUMNS = (submissions.c.id, submissions.c.guarantee_number, submissions.c.kind,
                 submissions.c.project_name, submissions.c.issuer, submissions.c.state,
                 submissions.c.created_at, submissions.c.sent_at, submissions.c.answered_at)


@dataclass(frozen=True)
class Listed:
    id: int
    number: str
    kind: str
    project_name: str
    issuer: str  # the issuer's name from the configuration ("" when unroutable)
    state: str
    state_ja: str
    created_at: datetime
    latest_at: datetime  # answered, else sent, else created


@dataclass(frozen=True)
class Page:
    rows: tuple[Listed, ...]
    next_before: int | None  # the `before` of the next page; None on the last


@dataclass(frozen=True)
class Event:
    what: str
    at: datetime | None
    note: str = ""


@dataclass(frozen=True)
class AnswerView:
    verdict: str  # in Japanese
    matched_by: str
    subject: str
    sender: str
    ledger_id: int | None  # the answer's mail, when it is in scope


@dataclass(frozen=True)
class Unverified:
    at: str
    claimed: str
    subject: str
    sender: str
    authentication: str
    ledger_id: int | None


@dataclass(frozen=True)
class Earlier:
    message_id: str
    state: str  # of its outbox row; "" when it has none
    sent_at: datetime | None


@dataclass(frozen=True)
class Detail:
    id: int
    number: str
    kind: str
    project_name: str
    issuer: str
    found_by: str
    to_addr: str
    subject: str
    message_id: str
    state: str
    state_ja: str
    reason: str
    ledger_id: int
    notice_in_scope: bool
    timeline: tuple[Event, ...]
    answer: AnswerView | None
    unverified: tuple[Unverified, ...]
    earlier: tuple[Earlier, ...]
    trail: tuple[str, ...]  # how the issuer was chosen (the notice mail's decision record)


def clause(scope: Scope) -> ColumnElement[bool]:
    """The `submissions ⋈ ledger` rows this scope sees: notices of its contractor mailboxes."""
    if not scope.contractor_mailboxes:
        return false()
    return and_(scope.ledger_clause(), ledger.c.mailbox.in_(sorted(scope.contractor_mailboxes)))


def issuer_name(config: Config, key: str | None) -> str:
    if key is None:
        return ""
    issuer = config.issuers.get(key)
    return (issuer.name if issuer is not None else None) or key


def listing(conn: Connection, scope: Scope, config: Config, *, state: str = "",
            text: str = "", before: int | None = None) -> Page:
    """One page of submissions in scope, newest first: those with an id below `before`, in
    `state` (one of `STATES`) and whose number is `text`'s canonical number or whose
    工事名 contains `text`."""
    query = (select(*_LIST_COLUMNS).join(ledger, ledger.c.id == submissions.c.ledger_id)
             .where(clause(scope)).order_by(submissions.c.id.desc()).limit(PAGE_SIZE + 1))
    if state in STATES:
        query = query.where(submissions.c.state == state)
    typed = text.strip()
    if typed:
        number = canonical_number(typed)
        found = [submissions.c.project_name.contains(typed, autoescape=True)]
        if number is not None:
            found.append(submissions.c.guarantee_number == number)
        query = query.where(or_(*found))
    if before is not None:
        query = query.where(submissions.c.id < before)
    rows = list(conn.execute(query))
    shown = tuple(Listed(
        id=r.id, number=r.guarantee_number, kind=r.kind or "", project_name=r.project_name or "",
        issuer=issuer_name(config, r.issuer), state=r.state,
        state_ja=STATE_JA.get(r.state, r.state), created_at=utc(r.created_at),
        latest_at=utc(r.answered_at or r.sent_at or r.created_at)) for r in rows[:PAGE_SIZE])
    return Page(shown, shown[-1].id if len(rows) > PAGE_SIZE else None)


def detail(conn: Connection, scope: Scope, config: Config, submission_id: int) -> Detail | None:
    """One submission in scope, None when there is none (or it is out of scope)."""
    row = conn.execute(select(submissions, ledger.c.mailbox, ledger.c.issuer.label("routed"))
                       .join(ledger, ledger.c.id == submissions.c.ledger_id)
                       .where(submissions.c.id == submission_id, clause(scope))).first()
    if row is None:
        return None
    data = json.loads(row.answer) if row.answer else {}
    return Detail(
        id=row.id, number=row.guarantee_number, kind=row.kind or "",
        project_name=row.project_name or "", issuer=issuer_name(config, row.issuer),
        found_by=FOUND_BY_JA.get(row.found_by or "", row.found_by or ""),
        to_addr=row.to_addr or "", subject=row.subject or "", message_id=row.message_id,
        state=row.state, state_ja=STATE_JA.get(row.state, row.state), reason=row.reason or "",
        ledger_id=row.ledger_id, notice_in_scope=scope.sees_row(row.mailbox, row.routed),
        timeline=_timeline(row), answer=_answer(conn, scope, row, data),
        unverified=tuple(_unverified(conn, scope, entry)
                         for entry in data.get("unauthenticated", [])),
        earlier=_earlier(conn, row.earlier_ids), trail=_trail(conn, row))


def _timeline(row: Any) -> tuple[Event, ...]:
    events = [Event("作成（提出先の決定）", utc(row.created_at),
                    "提出先を決められませんでした" if row.state == "unroutable" else "")]
    if row.sent_at is not None:
        events.append(Event("送信", utc(row.sent_at)))
    if row.reminders:
        events.append(Event(f"返信待ちの連絡（{row.reminders} 回目）",
                            utc(row.reminded_at) if row.reminded_at else None))
    if row.answered_at is not None:
        events.append(Event("返信の記録", utc(row.answered_at), STATE_JA.get(row.state, row.state)))
    elif row.state == "failed":
        events.append(Event("送信失敗", None, row.reason or ""))
    return tuple(events)


def _visible_mail(conn: Connection, scope: Scope, ledger_id: Any) -> int | None:
    """`ledger_id` when that mail exists and is in scope (else no link to it)."""
    if not isinstance(ledger_id, int) or ledger_id <= 0:
        return None
    found = conn.execute(select(ledger.c.mailbox, ledger.c.issuer)
                         .where(ledger.c.id == ledger_id, scope.ledger_clause())).first()
    return ledger_id if found is not None and scope.sees_row(found.mailbox, found.issuer) \
        else None


def _answer(conn: Connection, scope: Scope, row: Any, data: dict[str, Any]) -> AnswerView | None:
    verdict = data.get("verdict")
    if not verdict or verdict == "unauthenticated":
        return None
    return AnswerView(verdict=ANSWER_JA.get(verdict, str(verdict)),
                      matched_by=MATCHED_BY_JA.get(data.get("how", ""), str(data.get("how", ""))),
                      subject=str(data.get("subject") or ""), sender=str(data.get("from") or ""),
                      ledger_id=_visible_mail(conn, scope, row.answer_ledger_id))


def _unverified(conn: Connection, scope: Scope, entry: dict[str, Any]) -> Unverified:
    claimed = str(entry.get("claimed") or "")
    return Unverified(at=str(entry.get("at") or ""), claimed=ANSWER_JA.get(claimed, claimed),
                      subject=str(entry.get("subject") or ""), sender=str(entry.get("from") or ""),
                      authentication=str(entry.get("authentication") or ""),
                      ledger_id=_visible_mail(conn, scope, entry.get("ledger_id")))


def _earlier(conn: Connection, earlier_ids: str | None) -> tuple[Earlier, ...]:
    ids = (earlier_ids or "").split()
    if not ids:
        return ()
    sent = {r.message_id: r for r in conn.execute(
        select(outbox.c.message_id, outbox.c.state, outbox.c.sent_at)
        .where(outbox.c.message_id.in_(ids), outbox.c.kind == "submission"))}
    return tuple(Earlier(mid, sent[mid].state if mid in sent else "",
                         utc(sent[mid].sent_at) if mid in sent and sent[mid].sent_at else None)
                 for mid in reversed(ids))


def _trail(conn: Connection, row: Any) -> tuple[str, ...]:
    """The route trail the notice mail's decision wrote for this submission (as
    `mailbot submissions show` prints it)."""
    entry = entry_by_id(conn, row.ledger_id)
    record = (entry.record if entry else None) or {}
    for item in record.get("submissions", []):
        if item.get("message_id") == row.message_id:
            return tuple(str(line) for line in item.get("trail", []))
    return ()

"""What needs a person (要対応): the items of the account's scope, each with the actions
valid for its row's current state.

Five kinds, each read from its owner's table under `Scope.ledger_clause()`:
- `review`: decided mail filed to its mailbox's review folder (`ledger.folder`, the
  decision record's "folder"), decided in the last `REVIEW_DAYS` days;
- `quarantine`: ledger rows the pipeline gave up on;
- `outbox`: failed outbox rows, and replies queued but not sent yet (waiting for the send
  window); a row of no received mail (a digest, an alert) only for accounts of every issuer;
- `request`: reply requests stored but not rendered yet, or that failed to render;
- `submission` (contractor side): submissions unroutable, failed, or answered with a
  discrepancy.

An item marked handled (`Audit.handled`) leaves the list unless its row changed after the
mark (`Item.changed_at`: a new failure, a new answer); `handled=True` lists those marked.
`find` reads one item by kind and id whatever its state (an action on a row that moved on
is told so, not 404); out of scope it is None. Nothing shown here carries a key: subjects
and errors taken from the raw mail go through `mask_key_like`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from mailbot.config import Config
from mailbot.ledger import LedgerState
from mailbot.store.schema import ledger, outbox, reply_requests, submissions, utc
from mailbot.submit.staff import STATE_JA as SUBMISSION_STATES_JA

from .redact import mask_key_like
from .scope import Scope

KINDS = ("review", "quarantine", "outbox", "request", "submission")
KINDS_JA = {"review": "要確認フォルダのメール", "quarantine": "隔離されたメール",
            "outbox": "送信できなかった・送信待ちのメール", "request": "作成前・作成できなかった返信",
            "submission": "提出（受注者側）"}
ACTIONS_JA = {"retry": "再試行", "cancel": "返信を取り消す", "resend": "再送する",
              "handled": "対応済みにする"}
REVIEW_DAYS = 30
MAX_PER_KIND = 200
OUTBOX_STATES_JA = {"queued": "送信待ち", "failed": "送信失敗", "sent": "送信済",
                    "cancelled": "取消"}
REQUEST_STATES_JA = {"stored": "作成待ち", "failed": "作成失敗", "queued": "送信待ち",
                     "sent": "送信済", "cancelled": "取消", "suppressed": "送信抑止"}

@dataclass(frozen=True)
class Item:
    """One thing that needs (or needed) a person."""

    kind: str
    id: int
    ledger_id: int | None  # the mail it concerns
    state: str  # the row's own state
    state_ja: str
    title: str  # one line: the mail's subject, the outbox row's subject, the number
    lines: tuple[tuple[str, str], ...]  # (label, value) shown under the title
    at: datetime | None  # when it came to need a person, as far as the row tells
    changed_at: datetime | None  # the row's latest own change (None: the row keeps none)
    actions: tuple[str, ...]  # valid now, "handled" always last
    handled_at: datetime | None = None

    @property
    def target(self) -> str:
        return target_of(self.kind, self.id)


def target_of(kind: str, row_id: int) -> str:
    """The audit trail's name of an item's row."""
    table = {"review": "ledger", "quarantine": "ledger"}.get(kind, kind)
    return f"{table}:{row_id}"


def _first(*values: Any) -> datetime | None:
    found = [utc(v) for v in values if v is not None]
    return max(found) if found else None


def _last_line(error: str | None) -> str:
    lines = [line for line in (error or "").splitlines() if line.strip()]
    return mask_key_like(lines[-1].strip()[:300]) if lines else ""


# -- the kinds ---------------------------------------------------------------------------


def _review_folders(config: Config, scope: Scope) -> dict[str, str]:
    seen = scope.issuer_mailboxes | scope.contractor_mailboxes
    return {m.name: m.review_folder for m in config.mailboxes if m.name in seen}


def _reviews(conn: Connection, config: Config, scope: Scope, now: datetime,
             where: ColumnElement[bool]) -> list[Item]:
    folders = _review_folders(config, scope)
    if not folders:
        return []
    # `ledger.folder` is where the decision filed the mail (mailbot/ledger/listing.py).
    filed = [and_(ledger.c.mailbox == name, ledger.c.folder == folder)
             for name, folder in sorted(folders.items())]
    query = (select(ledger.c.id, ledger.c.mailbox, ledger.c.state, ledger.c.sender,
                    ledger.c.subject, ledger.c.decided_at, ledger.c.decision)
             .where(ledger.c.state.in_((LedgerState.DECIDED, LedgerState.REPLIED)),
                    ledger.c.decided_at >= now - timedelta(days=REVIEW_DAYS),
                    or_(*filed), scope.ledger_clause(), where)
             .order_by(ledger.c.id.desc()).limit(MAX_PER_KIND))
    out = []
    for row in conn.execute(query):
        try:
            record = json.loads(row.decision)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        outcomes = ", ".join(str(o) for o in record.get("outcomes") or []) or "-"
        problems = ", ".join(str(p.get("code")) for p in record.get("problems") or []
                             if isinstance(p, dict)) or "-"
        out.append(Item("review", row.id, row.id, row.state, "要確認", row.subject or "(件名なし)",
                        (("差出人", row.sender or ""), ("判定", str(record.get("status", ""))),
                         ("結果", outcomes), ("問題", problems),
                         ("振り分け先", str(record.get("folder")))),
                        _first(row.decided_at), _first(row.decided_at), ("handled",)))
    return out


def _quarantined(conn: Connection, scope: Scope, where: ColumnElement[bool]) -> list[Item]:
    query = (select(ledger.c.id, ledger.c.mailbox, ledger.c.state, ledger.c.sender,
                    ledger.c.subject, ledger.c.received_at, ledger.c.attempts,
                    ledger.c.last_error)
             .where(scope.ledger_clause(), where).order_by(ledger.c.id.desc())
             .limit(MAX_PER_KIND))
    out = []
    for row in conn.execute(query):
        quarantined = row.state == LedgerState.QUARANTINED
        out.append(Item(
            "quarantine", row.id, row.id, row.state,
            "隔離" if quarantined else _ledger_state_ja(row.state),
            mask_key_like(row.subject) or "(件名なし)",
            (("差出人", mask_key_like(row.sender)), ("受信箱", row.mailbox),
             ("試行回数", str(row.attempts)), ("エラー", _last_line(row.last_error))),
            _first(row.received_at), None,
            ("retry", "handled") if quarantined else ("handled",)))
    return out


def _ledger_state_ja(state: str) -> str:
    from .format import LEDGER_STATES_JA
    return LEDGER_STATES_JA.get(state, state)


def _outbox_scope(scope: Scope) -> ColumnElement[bool]:
    """Outbox rows of mail in scope; rows of no mail (digests, alerts) for every issuer."""
    of_mail = outbox.c.ledger_id.in_(select(ledger.c.id).where(scope.ledger_clause()))
    return or_(of_mail, outbox.c.ledger_id.is_(None)) if scope.issuers is None else of_mail


def _outbox_rows(conn: Connection, scope: Scope, where: ColumnElement[bool]) -> list[Item]:
    query = (select(outbox.c.id, outbox.c.kind, outbox.c.ledger_id, outbox.c.state,
                    outbox.c.to_addrs, outbox.c.subject, outbox.c.attempts,
                    outbox.c.next_attempt_at, outbox.c.last_error, outbox.c.created_at)
             .where(_outbox_scope(scope), where).order_by(outbox.c.id.desc())
             .limit(MAX_PER_KIND))
    out = []
    for row in conn.execute(query):
        failed = row.state == "failed"
        actions = {"failed": ("retry", "cancel", "handled"),
                   "queued": ("cancel", "handled")}.get(row.state, ("handled",))
        lines = [("種類", {"reply": "返信", "digest": "日次報告", "alert": "担当者への通知",
                          "submission": "提出"}.get(row.kind, row.kind)),
                 ("宛先", row.to_addrs), ("試行回数", str(row.attempts))]
        if row.last_error:
            lines.append(("エラー", _last_line(row.last_error)))
        changed = row.next_attempt_at if failed else row.created_at
        out.append(Item("outbox", row.id, row.ledger_id, row.state,
                        OUTBOX_STATES_JA.get(row.state, row.state),
                        mask_key_like(row.subject) or "(件名なし)", tuple(lines),
                        _first(row.next_attempt_at if failed else row.created_at),
                        _first(changed), actions))
    return out


def _requests(conn: Connection, scope: Scope, where: ColumnElement[bool]) -> list[Item]:
    query = (select(reply_requests.c.id, reply_requests.c.ledger_id, reply_requests.c.state,
                    reply_requests.c.to_addr, reply_requests.c.template,
                    reply_requests.c.context, reply_requests.c.error,
                    reply_requests.c.failed_at, reply_requests.c.created_at)
             .join(ledger, ledger.c.id == reply_requests.c.ledger_id)
             .where(scope.ledger_clause(), where).order_by(reply_requests.c.id.desc())
             .limit(MAX_PER_KIND))
    out = []
    for row in conn.execute(query):
        unrendered = row.state == "failed" and row.error is not None
        actions = (("retry", "cancel", "handled") if unrendered
                   else ("cancel", "handled") if row.state == "stored" else ("handled",))
        try:
            subject = str(json.loads(row.context).get("subject") or "")
        except (ValueError, AttributeError):
            subject = ""
        lines = [("宛先", row.to_addr), ("返信の種類", row.template)]
        if row.error:
            lines.append(("エラー", _last_line(row.error)))
        out.append(Item("request", row.id, row.ledger_id, row.state,
                        REQUEST_STATES_JA.get(row.state, row.state),
                        mask_key_like(subject) or "(件名なし)", tuple(lines),
                        _first(row.failed_at or row.created_at),
                        _first(row.failed_at, row.created_at), actions))
    return out


def _submissions(conn: Connection, scope: Scope, where: ColumnElement[bool]) -> list[Item]:
    query = (select(submissions.c.id, submissions.c.ledger_id, submissions.c.state,
                    submissions.c.guarantee_number, submissions.c.project_name,
                    submissions.c.issuer, submissions.c.to_addr, submissions.c.reason,
                    submissions.c.created_at, submissions.c.sent_at,
                    submissions.c.answered_at, submissions.c.answer,
                    outbox.c.state.label("mail_state"), outbox.c.next_attempt_at)
             .join(ledger, ledger.c.id == submissions.c.ledger_id)
             .outerjoin(outbox, and_(outbox.c.message_id == submissions.c.message_id,
                                     outbox.c.kind == "submission"))
             .where(scope.ledger_clause(), where).order_by(submissions.c.id.desc())
             .limit(MAX_PER_KIND))
    out = []
    for row in conn.execute(query):
        resend = row.state == "failed" and row.mail_state == "failed"
        lines = [("工事名", row.project_name or ""), ("提出先", row.issuer or "-"),
                 ("宛先", row.to_addr or "-")]
        if row.reason:
            lines.append(("理由", mask_key_like(row.reason)[:300]))
        if row.state == "discrepancy":
            lines.append(("発注者の返信", _answer_subject(row.answer)))
        if not resend and row.state in ("unroutable", "discrepancy", "failed"):
            lines.append(("再提出", "設定や内容を直してから、お知らせのメールを受付のメールボックスへ"
                                    "もう一度転送してください。"))
        failed_at = row.next_attempt_at if row.mail_state == "failed" else None
        out.append(Item("submission", row.id, row.ledger_id, row.state,
                        SUBMISSION_STATES_JA.get(row.state, row.state),
                        f"保証契約番号 {row.guarantee_number}", tuple(lines),
                        _first(row.answered_at or failed_at or row.created_at),
                        _first(row.created_at, row.sent_at, row.answered_at, failed_at),
                        ("resend", "handled") if resend else ("handled",)))
    return out


def _answer_subject(answer: str | None) -> str:
    try:
        data = json.loads(answer or "{}")
    except ValueError:
        return ""
    return mask_key_like(str(data.get("subject") or "")) if isinstance(data, dict) else ""


_ATTENTION: dict[str, ColumnElement[bool]] = {
    "quarantine": ledger.c.state == LedgerState.QUARANTINED,
    "outbox": or_(outbox.c.state == "failed",
                  and_(outbox.c.state == "queued", outbox.c.kind == "reply")),
    "request": or_(reply_requests.c.state == "stored",
                   and_(reply_requests.c.state == "failed", reply_requests.c.error.is_not(None))),
    "submission": submissions.c.state.in_(("unroutable", "failed", "discrepancy")),
}
_ID = {"review": ledger.c.id, "quarantine": ledger.c.id, "outbox": outbox.c.id,
       "request": reply_requests.c.id, "submission": submissions.c.id}


def _read(conn: Connection, config: Config, scope: Scope, now: datetime, kind: str,
          where: ColumnElement[bool]) -> list[Item]:
    if kind == "review":
        return _reviews(conn, config, scope, now, where)
    reader = {"quarantine": _quarantined, "outbox": _outbox_rows, "request": _requests,
              "submission": _submissions}[kind]
    return reader(conn, scope, where)


def items(conn: Connection, config: Config, scope: Scope, now: datetime,
          handled_of: Callable[[list[str]], dict[str, datetime]], *,
          show_handled: bool = False) -> dict[str, list[Item]]:
    """Kind → its items in scope, newest first: those needing a person, or with
    `show_handled` those marked handled since their row last changed. `handled_of` is
    `Audit.handled`: target → when last marked handled."""
    read = {kind: _read(conn, config, scope, now, kind, _ATTENTION.get(kind, true()))
            for kind in KINDS}
    handled = handled_of([item.target for listed in read.values() for item in listed])
    out: dict[str, list[Item]] = {}
    for kind, listed in read.items():
        out[kind] = []
        for item in listed:
            mark = handled.get(item.target)
            still = mark is not None and (item.changed_at is None or item.changed_at <= mark)
            if still == show_handled:
                out[kind].append(replace(item, handled_at=mark) if still else item)
    return out


def find(conn: Connection, config: Config, scope: Scope, now: datetime, kind: str,
         row_id: int) -> Item | None:
    """The item of `kind` and `row_id` in scope whatever its row's state now; None when
    there is no such row or it is out of scope. A review item is one only while its row
    was filed to review in the last `REVIEW_DAYS` days."""
    if kind not in KINDS:
        return None
    found = _read(conn, config, scope, now, kind, _ID[kind] == row_id)
    return found[0] if found else None

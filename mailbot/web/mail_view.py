"""What one mail's page reads: its headers (decoded, keys masked), the notices the decision
read, the rules that ran, the reply as sent (or why none), the mailbox action and the audit
trail.

The decision record holds masked keys only, but the raw mail has them in clear, and a
contractor may type a key into any header. So the raw mail is read again with the reader
the pipeline uses (PDFs in a sandboxed worker, `parsers.sandbox.PdfPool`) to learn the
clear keys, and every header value and reply body is masked with them
(`mailbot.pipeline.decide.mask_keys_in`) before it reaches the page. When that reading
fails no header of the raw mail is shown, only the ledger's (masked) sender and subject.
Only the raw download (`/mails/{id}/raw`) gives the mail as it came.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email import policy as email_policy
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mailbot.ledger import Entry, Ledger, RawPurged, entry_by_id
from mailbot.outbox.rows import ROW_COLUMNS, OutboxRow, outbox_row
from mailbot.pipeline.decide import mask_keys_in
from mailbot.store.schema import ledger, outbox, reply_requests, utc
from parsers.headers import decode_header_text, raw_header
from parsers.limits import Limits
from parsers.reader import read_in_one_call
from parsers.sandbox import PdfPool

from .codes import code_ja
from .mail_list import MASKED_BY_DECISION, without_bidi
from .redact import mask_key_like
from .scope import Scope

HEADERS = ("From", "To", "Cc", "Date", "Subject", "Message-ID", "Reply-To")
MAX_HEADER = 2000
MAX_BODY = 20000
OUTBOX_STATES_JA = {"queued": "送信待ち", "sent": "送信済", "failed": "送信失敗",
                    "cancelled": "取消済"}
REQUEST_STATES_JA = {"stored": "返信待ち（まだ送信の列に入っていません）", "queued": "送信の列に入っています",
                     "sent": "送信済", "failed": "作成できませんでした", "cancelled": "取消済"}
ACTION_STATES_JA = {"none": "なし", "pending": "未実施（次の同期で行います）", "done": "実施済"}


@dataclass(frozen=True)
class NoticeView:
    number: str
    kind: str
    project_name: str
    contractor: str
    key_masked: str
    origin: str
    outcomes: tuple[str, ...]  # Japanese labels
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RuleRun:
    number: str
    rule: str
    hit: bool


@dataclass(frozen=True)
class ReplyView:
    id: int
    kind: str
    state: str  # Japanese
    created_at: datetime
    sent_at: datetime | None
    to: str
    subject: str
    body: str | None  # text/plain as sent, keys masked; None once purged
    last_error: str | None


@dataclass(frozen=True)
class MailView:
    entry: Entry
    sender: str  # the ledger's, masked
    subject: str
    message_id: str
    last_error: str | None  # the end of the last traceback, masked
    raw_note: str | None  # why the raw mail cannot be shown, None when it can
    headers: tuple[tuple[str, str], ...]
    status: str | None
    folder: str | None
    problems: tuple[str, ...]
    notices: tuple[NoticeView, ...]
    rules: tuple[RuleRun, ...]
    routes: tuple[tuple[str, bool], ...]  # [[routes]] tried: (name, matched)
    replies: tuple[ReplyView, ...]
    reply_request: str | None  # the reply request's state (Japanese), if any
    reply_skipped: str | None
    action: str | None
    action_state: str

    @property
    def raw_available(self) -> bool:
        return self.raw_note is None


def scoped_entry(conn: Connection, scope: Scope, ledger_id: int) -> Entry | None:
    """The ledger row `ledger_id` if the scope sees it, else None (as if missing)."""
    seen = conn.execute(select(ledger.c.id).where(ledger.c.id == ledger_id,
                                                  scope.ledger_clause())).first()
    return entry_by_id(conn, ledger_id) if seen else None


def raw_of(book: Ledger, entry: Entry) -> tuple[bytes | None, str | None]:
    """(the raw mail, None) or (None, why it is not there)."""
    try:
        return book.raw(entry), None
    except RawPurged as gone:
        from .format import jst
        return None, f"元のメールは保存期間を過ぎたため {jst(gone.purged_at)} に削除されました。"
    except OSError:
        return None, "元のメールのファイルが見つかりません（スプールから失われています）。"


def clear_keys(raw: bytes, record: dict[str, Any],
               limits: Limits | None = None) -> list[str] | None:
    """The clear keys in `raw`, read as the pipeline reads it; [] when the decision read no
    notice (nothing to learn), None when the reading failed. A mail not decided yet (`record`
    empty) is read too: its listing columns are not masked yet. A reading that finds fewer
    notices than the decision did (a worker that could not start or died) is a failure: a
    problem in place of a notice would leave its key unmasked. The whole reading runs in one
    worker call under one timeout (`Limits.pdf_timeout_s`), so a mail of many slow parts
    cannot hold the page: a timeout is a failed reading."""
    if record and not record.get("notices"):
        return []  # decided without a notice: no key to learn
    try:
        with PdfPool(1, limits) as pool:
            parsed = read_in_one_call(pool, raw, "console")
    except Exception:  # noqa: BLE001 — a hostile mail must not stop the page
        return None
    if len(parsed.notices) < len(record.get("notices") or []):
        return None  # read less than the decision did (a worker failed): keys unknown
    return sorted({n.auth_key for n in parsed.notices if n.auth_key}, key=len, reverse=True)


def headers_of(raw: bytes, mask: Callable[[str], str]) -> tuple[tuple[str, str], ...]:
    try:
        message = BytesHeaderParser(policy=compat32).parsebytes(raw[:262144])
    except Exception:  # noqa: BLE001
        return ()
    shown = []
    for name in HEADERS:
        value = raw_header(message, name)
        if value is not None:
            shown.append((name, mask(decode_header_text(value))[:MAX_HEADER]))
    return tuple(shown)


def _body(raw: bytes | None, keys: list[str]) -> str | None:
    if raw is None:
        return None
    try:
        message = message_from_bytes(raw, policy=email_policy.default)
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
    except Exception:  # noqa: BLE001
        return "（本文を読み取れません）"
    return mask_keys_in(str(text)[:MAX_BODY], keys)


def _replies(conn: Connection, ledger_id: int, keys: list[str]) -> tuple[ReplyView, ...]:
    rows: list[OutboxRow] = [outbox_row(r._mapping) for r in conn.execute(
        select(*ROW_COLUMNS, outbox.c.raw).where(outbox.c.ledger_id == ledger_id)
        .order_by(outbox.c.id))]
    return tuple(ReplyView(
        id=row.id, kind=row.kind, state=OUTBOX_STATES_JA.get(row.state, row.state),
        created_at=row.created_at, sent_at=row.sent_at, to=mask_keys_in(row.to_addrs, keys),
        subject=mask_keys_in(row.subject or "", keys), body=_body(row.raw, keys),
        last_error=row.last_error) for row in rows)


def _request_state(conn: Connection, ledger_id: int) -> str | None:
    state = conn.execute(select(reply_requests.c.state)
                         .where(reply_requests.c.ledger_id == ledger_id)).scalar()
    return None if state is None else REQUEST_STATES_JA.get(state, state)


def _texts(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values or [] if isinstance(v, (str, int)))


def _notices(record: dict[str, Any]) -> tuple[tuple[NoticeView, ...], tuple[RuleRun, ...]]:
    checks = [v for v in record.get("verification") or [] if isinstance(v, dict)]
    notices: list[NoticeView] = []
    rules: list[RuleRun] = []
    for index, notice in enumerate(n for n in record.get("notices") or [] if isinstance(n, dict)):
        check = checks[index] if index < len(checks) else {}
        number = str(notice.get("guarantee_number") or "")
        notices.append(NoticeView(
            number=number, kind=str(notice.get("kind") or ""),
            project_name=str(notice.get("project_name") or ""),
            contractor=str(notice.get("contractor") or ""),
            key_masked=str(notice.get("auth_key") or ""), origin=str(notice.get("origin") or ""),
            outcomes=tuple(code_ja(c) for c in _texts(check.get("outcomes"))),
            reasons=_texts(check.get("reasons"))))
    for check in checks:
        rules.extend(RuleRun(str(check.get("guarantee_number") or ""), str(r.get("rule")),
                             bool(r.get("hit"))) for r in check.get("rules") or []
                     if isinstance(r, dict))
    return tuple(notices), tuple(rules)


def _action(action: str | None) -> str | None:
    if not action:
        return None
    kind, _, where = action.partition(":")
    return {"move": f"フォルダ「{where}」へ移動", "keyword": f"キーワード {where} を付ける"}.get(
        kind, action)


def mail_view(conn: Connection, book: Ledger, entry: Entry) -> MailView:
    record = entry.record or {}
    raw, note = raw_of(book, entry)
    keys = clear_keys(raw, record) if raw is not None else None
    if raw is not None and keys is None:
        note = "元のメールを読み直せなかったため、ヘッダーは表示しません（認証キーを伏せられないため）。"
    notices, rules = _notices(record)
    routing = record.get("routing")
    routing = routing if isinstance(routing, dict) else {}
    problems = [p for p in record.get("problems") or [] if isinstance(p, dict)]
    skipped = record.get("reply_skipped")

    def safe(text: str | None) -> str:
        """Masked with the keys read; a mail not decided yet (its ledger columns as they
        came) also with every word that could be a key."""
        masked = mask_keys_in(text or "", keys or [])
        decided = (entry.record or {}).get("status") in MASKED_BY_DECISION
        return without_bidi(masked if keys is not None and decided else mask_key_like(masked))

    headers = headers_of(raw, safe) if raw is not None and keys is not None else ()
    return MailView(
        entry=entry, sender=safe(entry.sender),
        subject=safe(entry.subject),
        message_id=safe(entry.message_id), raw_note=note,
        last_error=safe(entry.last_error[-2000:]) if entry.last_error else None, headers=headers,
        status=str(record["status"]) if record.get("status") else None,
        folder=str(record["folder"]) if record.get("folder") else None,
        problems=tuple(f"{code_ja(str(p.get('code')))}（{p.get('origin') or '-'}）"
                       for p in problems),
        notices=notices, rules=rules,
        routes=tuple((str(r.get("route")), bool(r.get("matched")))
                     for r in routing.get("routes") or [] if isinstance(r, dict)),
        replies=_replies(conn, entry.id, keys or []), reply_request=_request_state(conn, entry.id),
        reply_skipped=str(skipped) if skipped else None, action=_action(entry.action),
        action_state=ACTION_STATES_JA.get(entry.action_state, entry.action_state))


def decided_at(conn: Connection, ledger_id: int) -> datetime | None:
    at = conn.execute(select(ledger.c.decided_at).where(ledger.c.id == ledger_id)).scalar()
    return utc(at) if at is not None else None

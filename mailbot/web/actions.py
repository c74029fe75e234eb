"""The 要対応 actions: what an operator does to an item (`mailbot/web/act_items.py`), each
through the owner the CLI uses for it, so the console does exactly what the CLI does:

| item | action | owner (CLI) |
|---|---|---|
| quarantine | retry | `Ledger.retry` (`mailbot quarantine retry`) |
| outbox | retry, cancel | `Outbox.retry`, `Outbox.cancel` (`mailbot outbox retry/cancel`) |
| request | retry, cancel | `requests.retry`, `requests.cancel` (`mailbot outbox retry/cancel --request`) |
| submission | resend | `Outbox.retry` of the submission's failed mail (`mailbot outbox retry`) |
| every kind | handled | the audit trail only (a note) |

Each action runs in one transaction with its audit entry (the owners take the caller's
connection). The item must be in the account's scope (else 404) and the action valid for
its row's state now; an action on a row that moved on (a double submit, a daemon that was
faster) changes nothing and says so. Every answer is a Japanese flash message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection
from starlette.exceptions import HTTPException

from mailbot.ledger import Ledger, requests, spool_for
from mailbot.outbox import Outbox
from mailbot.outgoing import outbox_for
from mailbot.submit import table

from . import act_items
from .act_items import ACTIONS_JA, Item
from .app import Ctx, not_found

MAX_NOTE = 2000
T = TypeVar("T")
_OWNERS_LOCK = threading.Lock()
LABELS_JA = {"review": "メール", "quarantine": "メール", "outbox": "送信メール",
             "request": "返信", "submission": "提出"}
DONE_JA = {
    ("quarantine", "retry"): "{label} {id} を再試行します。まもなく判定し直されます。",
    ("outbox", "retry"): "{label} {id} を送信の列に戻しました。まもなく送信されます。",
    ("outbox", "cancel"): "{label} {id} を取り消しました（送信しません）。",
    ("request", "retry"): "{label} {id} を作り直します。次の送信処理で作成されます。",
    ("request", "cancel"): "{label} {id} を取り消しました（送信しません）。",
    ("submission", "resend"): "{label} {id} の提出メールを送信の列に戻しました。まもなく再送されます。",
}


def _ledger(ctx: Ctx) -> Ledger:
    return _service(ctx, "attention_ledger", lambda: Ledger(
        ctx.web.store.engine, spool_for(ctx.web.config, ctx.web.store)), Ledger)


def _outbox(ctx: Ctx) -> Outbox:
    return _service(ctx, "attention_outbox", lambda: outbox_for(ctx.web.config, ctx.web.store),
                    Outbox)


def _service(ctx: Ctx, name: str, make: Callable[[], T], kind: type[T]) -> T:
    with _OWNERS_LOCK:
        found = ctx.web.services.get(name)
        if not isinstance(found, kind):
            found = ctx.web.services[name] = make()
        return found


def _retry_quarantined(ctx: Ctx, conn: Connection, item: Item) -> str | None:
    return "" if _ledger(ctx).retry(item.id, conn=conn) else None


def _retry_outbox(ctx: Ctx, conn: Connection, item: Item) -> str | None:
    return "" if _outbox(ctx).retry(item.id, ctx.now, conn=conn) else None


def _cancel_outbox(ctx: Ctx, conn: Connection, item: Item) -> str | None:
    return "" if _outbox(ctx).cancel(item.id, conn=conn) else None


def _retry_request(ctx: Ctx, conn: Connection, item: Item) -> str | None:
    return "" if requests.retry(conn, item.id) else None


def _cancel_request(ctx: Ctx, conn: Connection, item: Item) -> str | None:
    return "" if requests.cancel(conn, item.id) else None


def _resend_submission(ctx: Ctx, conn: Connection, item: Item) -> str | None:
    """The submission's failed mail back in line (what `mailbot outbox retry` does to it);
    the submission follows it to `queued`. Returns the outbox row, for the audit entry."""
    row = table.get(conn, item.id)
    mail = _outbox(ctx).by_message_id(row.message_id) if row is not None else None
    if mail is None or not _outbox(ctx).retry(mail.id, ctx.now, conn=conn):
        return None
    return f"outbox:{mail.id}"


OWNERS: dict[tuple[str, str], Callable[[Ctx, Connection, Item], str | None]] = {
    ("quarantine", "retry"): _retry_quarantined,
    ("outbox", "retry"): _retry_outbox,
    ("outbox", "cancel"): _cancel_outbox,
    ("request", "retry"): _retry_request,
    ("request", "cancel"): _cancel_request,
    ("submission", "resend"): _resend_submission,
}


VERBS_JA = {**ACTIONS_JA, "retry": "再試行する"}  # the button's label as a verb


def _refused(item: Item, action: str) -> str:
    label = f"{LABELS_JA[item.kind]} {item.id}"
    return (f"{label} は現在「{item.state_ja}」のため、{VERBS_JA[action]}ことはできません"
            "（何も変更していません）。ページを開き直して、最新の状態を確認してください。")


def act(ctx: Ctx, kind: str, row_id: int, action: str, note: str) -> str:
    """Do `action` to the item; the flash message saying what happened."""
    ctx.require("operator")
    if action not in ACTIONS_JA:
        raise HTTPException(400)
    config, engine = ctx.web.config, ctx.web.store.engine
    if action == "handled":
        return _mark_handled(ctx, kind, row_id, note)
    with engine.begin() as conn:
        item = act_items.find(conn, config, ctx.scope, ctx.now, kind, row_id)
        if item is None:
            raise not_found()
        owner = OWNERS.get((kind, action))
        if owner is None or action not in item.actions:
            return _refused(item, action)
        done = owner(ctx, conn, item)
        if done is None:  # the row moved on between reading and the owner's own check
            return _refused(item, action)  # (the owner changed nothing)
        ctx.audit(action, target=item.target, ledger_id=item.ledger_id,
                  detail=done or None, conn=conn)
    return DONE_JA[(kind, action)].format(label=LABELS_JA[kind], id=row_id)


def _mark_handled(ctx: Ctx, kind: str, row_id: int, note: str) -> str:
    """A note in the audit trail: the item leaves the list until its row changes."""
    with ctx.web.store.engine.connect() as conn:
        item = act_items.find(conn, ctx.web.config, ctx.scope, ctx.now, kind, row_id)
    if item is None:
        raise not_found()
    mark = ctx.web.audit.handled([item.target]).get(item.target)
    if mark is not None and (item.changed_at is None or item.changed_at <= mark):
        return (f"{LABELS_JA[kind]} {row_id} は既に対応済みです（何も変更していません）。")
    ctx.audit("handled", target=item.target, ledger_id=item.ledger_id,
              detail=note.strip()[:MAX_NOTE] or None)
    return f"{LABELS_JA[kind]} {row_id} を対応済みにしました。"

"""What the 稼働状況 page reads: per mailbox in scope its source state, backlog and oldest
waiting mail; the outbox by state; the next send window.

The figures are those of `mailbot status` and `mailbot outbox list`, from the same owners:
the source state is `mailbot.ledger.sync.source_states`, the backlog `mailbot.backlog.backlogs`
(its labels in Japanese), the oldest waiting mail `mailbot.ledger.oldest_waiting_by_mailbox`,
the windows those of `mailbot.outgoing.outbox_for` (`SendWindow.next_open`). Only mailboxes
of the account's scope are listed. Outbox rows are counted under `Scope.ledger_clause()`
through their ledger row; rows of no received mail (digests, some alerts) only for an
account that sees every issuer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from mailbot.backlog import DNS_WAIT, STUCK, WAITING, Backlog, backlogs
from mailbot.config import Config
from mailbot.ledger.ledger import oldest_waiting_by_mailbox
from mailbot.ledger.sync import source_states
from mailbot.outbox import STATES as OUTBOX_STATES
from mailbot.outbox import SendWindow
from mailbot.outgoing import outbox_for
from mailbot.store import Store
from mailbot.store.schema import ledger, outbox
from mailbot.submit import issuer_window

from .format import TOKYO
from .scope import Scope
from .submissions_view import OUTBOX_STATES_JA

SOURCE_KINDS_JA = {"imap": "IMAP（取りに行く）", "lmtp": "LMTP（受け取る）", "smtp": "SMTP（受け取る）"}
BACKLOG_JA = {"to decide": "未処理", DNS_WAIT: "DNS の回答待ち", "to file": "フォルダ移動待ち",
              "replies to render": "返信の作成待ち", "mail to send": "送信待ち",
              "quarantined": "隔離", "replies not rendered": "返信を作成できず",
              "mail failed": "送信失敗"}
WEEKDAYS_JA = "月火水木金土日"
MAX_ERROR = 500


@dataclass(frozen=True)
class SourceRow:
    mailbox: str
    role: str  # 発注者 〇〇市 / 受注者側
    kind: str
    last_sync_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    failing: bool
    waiting: int  # received or processing (DNS waits included)
    oldest_at: datetime | None
    oldest_age: str
    quarantined: int
    backlog: int
    backlog_parts: tuple[str, ...]  # "送信待ち 2", …


@dataclass(frozen=True)
class OutboxCount:
    state: str
    label: str
    count: int


@dataclass(frozen=True)
class WindowView:
    name: str  # 既定 / the issuer's name
    open_now: bool
    next_open: datetime
    until: str  # "17:00" while open
    wait: str  # "2日 3時間" until it opens; "" while open
    hours: str  # 月〜金 09:00–17:00、祝日・年末年始は休み


def age_ja(delta: timedelta) -> str:
    """`3日 2時間`, `2時間 5分`, `4分`."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}日 {hours}時間"
    if hours:
        return f"{hours}時間 {mins}分"
    return f"{mins}分"


def _role(config: Config, role: str, issuer: str | None) -> str:
    if role == "contractor":
        return "受注者側（提出）"
    known = config.issuers.get(issuer or "")
    return f"発注者 {known.name if known else issuer or '（振り分け）'}"


def _parts(backlog: Backlog | None) -> tuple[str, ...]:
    if backlog is None:
        return ()
    return tuple(f"{BACKLOG_JA.get(label, label)} {values[label]}"
                 for values, order in ((backlog.waiting, WAITING), (backlog.stuck, STUCK))
                 for label in order if label in values)


def sources(conn: Connection, scope: Scope, config: Config, now: datetime) -> list[SourceRow]:
    """One row per configured mailbox in scope, in the configuration's order."""
    seen = scope.issuer_mailboxes | scope.contractor_mailboxes
    states = {s.mailbox: s for s in source_states(conn)}
    waiting = backlogs(conn)
    oldest = oldest_waiting_by_mailbox(conn)
    rows = []
    for mailbox in config.mailboxes:
        if mailbox.name not in seen:
            continue
        state = states.get(mailbox.name)
        backlog = waiting.get(mailbox.name)
        first = oldest.get(mailbox.name)
        rows.append(SourceRow(
            mailbox=mailbox.name, role=_role(config, mailbox.role, mailbox.issuer),
            kind=SOURCE_KINDS_JA.get(mailbox.kind, mailbox.kind),
            last_sync_at=state.last_sync_at if state else None,
            last_error=(state.last_error or "")[:MAX_ERROR] if state else "",
            last_error_at=state.last_error_at if state else None,
            failing=bool(state and state.failing),
            waiting=(backlog.waiting.get("to decide", 0) + backlog.waiting.get(DNS_WAIT, 0))
            if backlog else 0,
            oldest_at=first, oldest_age=age_ja(now - first) if first else "",
            quarantined=backlog.stuck.get("quarantined", 0) if backlog else 0,
            backlog=backlog.total if backlog else 0, backlog_parts=_parts(backlog)))
    return rows


def outbox_counts(conn: Connection, scope: Scope) -> tuple[list[OutboxCount], int | None]:
    """(outbox rows of mail in scope by state, every state listed; rows of no received mail
    — None unless the account sees every issuer)."""
    by_state: dict[str, int] = dict(conn.execute(
        select(outbox.c.state, func.count())
        .select_from(outbox.join(ledger, ledger.c.id == outbox.c.ledger_id))
        .where(scope.ledger_clause()).group_by(outbox.c.state)).all())
    unlinked = None
    if scope.issuers is None:
        unlinked = conn.execute(
            select(func.count()).select_from(
                outbox.outerjoin(ledger, ledger.c.id == outbox.c.ledger_id))
            .where(ledger.c.id.is_(None))).scalar_one()
    counts = [OutboxCount(state, OUTBOX_STATES_JA.get(state, state), by_state.get(state, 0))
              for state in OUTBOX_STATES]
    return counts, unlinked


def _hours(window: SendWindow) -> str:
    days = "・".join(WEEKDAYS_JA[d] for d in sorted(window.weekdays))
    closed = [*(["祝日"] if window.skip_holidays else []),
              *(["年末年始"] if window.closed_days else [])]
    return (f"{days} {window.start:%H:%M}–{window.end:%H:%M}"
            + (f"、{'・'.join(closed)}は休み" if closed else ""))


def window_view(name: str, window: SendWindow, now: datetime) -> WindowView:
    opens = window.next_open(now)
    open_now = opens == now
    return WindowView(name=name, open_now=open_now, next_open=opens,
                      until=f"{window.end:%H:%M}" if open_now else "",
                      wait="" if open_now else age_ja(opens - now), hours=_hours(window))


def windows(store: Store, scope: Scope, config: Config, now: datetime) -> list[WindowView]:
    """The default send window (replies, digests, alerts and most submissions), then — for
    the contractor side — each issuer whose submissions go out in its own hours;
    the windows `outbox_for` gives the outbox, so the page and the sender agree."""
    sender = outbox_for(config, store)
    local = now.astimezone(TOKYO)
    shown = [window_view("既定の送信時間帯", sender.window, local)]
    if scope.contractor_mailboxes:
        for key, issuer in config.issuers.items():
            own = sender.windows.get(issuer_window(key))
            if own is not None:  # the contractor side submits to every issuer
                shown.append(window_view(f"{issuer.name or key} への提出", own, local))
    return shown

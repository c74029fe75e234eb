"""What both halves of the outbox share: its settings, its windows and deadlines, reading
one row, and telling the listeners of a row's new state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from mailbot.ledger import requests
from mailbot.store.schema import outbox

from .rows import ROW_COLUMNS, Change, Listener, OutboxRow, ResendCheck, aware_utc, outbox_row
from .smtp import SmtpSettings
from .window import SendWindow


class OutboxCore:
    def __init__(
        self,
        engine: Engine,
        smtp: SmtpSettings,
        window: SendWindow,
        deadline: timedelta = timedelta(days=2),
        backoff: tuple[float, ...] = (60, 300, 900, 3600),
        on_permanent_failure: Callable[[OutboxRow], None] | None = None,
        windows: dict[str, SendWindow] | None = None,
        listeners: Sequence[Listener] = (),
        resend_checks: Sequence[ResendCheck] = (),
        envelope_sender: Callable[[OutboxRow], str | None] | None = None,
    ) -> None:
        """`on_permanent_failure` hears of a row that failed for good, after the commit
        (`failed_at` is the time of that flush): that is where alerts come from.
        `listeners` hear of every change of a row's state inside its transaction (the reply
        requests' own listener is always one of them); `resend_checks` may refuse a retry.
        `envelope_sender` gives a row's envelope sender at send time (a submission's
        tokened bounce address), None for the `From:` address."""
        if not backoff:
            raise ValueError("outbox backoff needs at least one delay")
        self.engine = engine
        self.smtp = smtp
        self.window = window
        self.windows = dict(windows or {})  # named windows: one per issuer that has its own
        self.deadline = deadline
        self.backoff = backoff
        self.on_permanent_failure = on_permanent_failure
        self.listeners: list[Listener] = [_follow_requests, *listeners]
        self.resend_checks = list(resend_checks)
        self.envelope_sender = envelope_sender
        # A row being sent is not due again before this (a second flush must not send it too;
        # after a crash in mid-send it comes due again).
        self.lease = timedelta(seconds=max(600.0, 4 * smtp.timeout))
        # The cluster node sending (`node#incarnation`, mailbot/cluster), kept on each row it
        # claims: a dead node's rows are due again once its node lease has run out.
        self.holder: str | None = None

    def get(self, row_id: int, with_raw: bool = False) -> OutboxRow | None:
        columns = [*ROW_COLUMNS, outbox.c.raw] if with_raw else ROW_COLUMNS
        with self.engine.connect() as conn:
            row = conn.execute(select(*columns).where(outbox.c.id == row_id)).first()
        return outbox_row(row._mapping) if row else None

    def _notify(self, conn: Connection, row: OutboxRow, state: str, at: datetime | None,
                reason: str | None = None) -> None:
        """Keep what `row` carries out in step with its new state, in this transaction."""
        change = Change(row, state, at, reason)
        for listener in self.listeners:
            listener(conn, change)

    def _deadline(self, now: datetime, immediate: bool, window: str | None) -> datetime:
        """Counted from the first moment the row may go out, so a reply queued before the
        year-end closure is not given up before its first attempt."""
        return (now if immediate else aware_utc(self._window(window).next_open(now))
                ) + self.deadline

    def due_at(self, row: OutboxRow) -> datetime:
        """When a queued row goes out: its next attempt, moved into its send window unless
        it is immediate."""
        at = aware_utc(row.next_attempt_at)
        return at if row.immediate else aware_utc(self._window(row.window).next_open(at))

    def _window(self, name: str | None) -> SendWindow:
        return self.windows.get(name, self.window) if name else self.window


def _follow_requests(conn: Connection, change: Change) -> None:
    """The reply request of a reply follows its mail's state (`mailbot.ledger.requests`)."""
    requests.follow_outbox(conn, change.row.reply_request_id, change.row.ledger_id, change.state)

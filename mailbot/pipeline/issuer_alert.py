"""The issuer staff's alert about a sender whose wrong key guesses are no longer answered.

`decide` says what to tell (`StaffAlert`, once per sender or number and throttle window:
the claim that crossed the limit); `alert_writes` gives the daemon the write that queues
the alert in the transaction recording the decision, rendered by the issuer side's alert
path (`Replier.staff_alert`, the issuer's template set, else ours).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from mailbot.config import Config
from mailbot.outbox import Outbox
from mailbot.replies.replier import Replier
from mailbot.verify import VerifyResult

from .facts import MailFacts
from .records import DecisionRecord

MAX_SHOWN = 200


@dataclass(frozen=True)
class StaffAlert:
    """An alert for the issuer's staff: what happened and the lines that say more."""

    issuer: str | None  # the issuer's ID (its staff are told), None for everybody's staff
    what: str
    details: tuple[str, ...]


def throttle_alert(issuer: str | None, sender_key: str | None, facts: MailFacts,
                   at: datetime, throttled: Sequence[VerifyResult]) -> StaffAlert:
    """The alert for a mail whose failing claims crossed the throttle's limit."""
    by_sender = any(r.throttled_by == "sender" for r in throttled)
    numbers = "、".join(sorted({r.guarantee_number[:40] for r in throttled}))
    who = (sender_key or "（不明）")[:MAX_SHOWN]
    details = [
        f"送信者: {who}" + ("" if by_sender else "（保証契約番号ごとの上限）"),
        f"保証契約番号: {numbers}",
        f"受信: {at.isoformat(timespec='seconds')}",
        f"件名: {(facts.subject or '（件名なし）')[:MAX_SHOWN]}",
        "認証キーの確認に繰り返し失敗したため、この送信者"
        + ("" if by_sender else "（またはこの保証契約番号）")
        + "への誤りの返信を止め、メールを要確認に移しています。"
        "正しい番号と認証キーのメールは、これまでどおり確認して返信します。",
        "このお知らせは上限を超えた最初のメールについてだけ送ります。",
    ]
    return StaffAlert(issuer, "認証キーの確認失敗が上限を超えました", tuple(details))


def alert_writes(config: Config, outbox: Outbox, alert: StaffAlert, ledger_id: int,
                 action: str | None
                 ) -> Callable[[Connection, DecisionRecord, datetime], str | None]:
    """The `Ledger.decide(extra=...)` write that queues `alert` with the decision; it keeps
    the decision's mailbox `action`. With no staff configured anywhere, nothing is queued."""
    def write(conn: Connection, record: DecisionRecord, now: datetime) -> str | None:
        mail = Replier(config, outbox).staff_alert(alert.issuer, alert.what,
                                                   list(alert.details), now)
        if mail is not None:
            outbox.insert(conn, "alert", mail.to_addrs, mail.raw, mail.message_id,
                          mail.subject, now, immediate=True, ledger_id=ledger_id)
        return action
    return write

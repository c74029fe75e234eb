"""The outbox: durable outgoing mail (replies, digests, alerts) and the window it goes out in.

`Outbox` queues rendered messages with their Message-ID fixed before the first attempt and
sends them over SMTP with retries until a deadline (DESIGN.md §6); `SendWindow` says when
mail may go out (office hours on Japanese working days).
"""

from .outbox import (
    FlushReport,
    Outbox,
    OutboxRow,
    ReplyRow,
    SmtpSettings,
    message_headers,
)
from .window import SendWindow

__all__ = [
    "FlushReport",
    "Outbox",
    "OutboxRow",
    "ReplyRow",
    "SendWindow",
    "SmtpSettings",
    "message_headers",
]

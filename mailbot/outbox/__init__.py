"""The outbox: durable outgoing mail (replies, digests, alerts, submissions) and the window it
goes out in.

`Outbox` queues rendered messages with their Message-ID fixed before the first attempt
(`queueing`) and sends them over SMTP (`smtp`) with retries until a deadline (`delivery`,
docs/reliability.md); `SendWindow` says when mail may go out (office hours on Japanese working
days). `rows` holds the table's rows and the `Change` its listeners hear of.
"""

from .outbox import Outbox
from .rows import (
    KINDS,
    STATES,
    Change,
    FlushReport,
    OutboxKind,
    OutboxRow,
    OutboxState,
    StaffMail,
    message_headers,
)
from .smtp import SmtpSettings
from .window import SendWindow

__all__ = [
    "KINDS",
    "STATES",
    "OutboxKind",
    "OutboxState",
    "Change",
    "FlushReport",
    "Outbox",
    "OutboxRow",
    "SendWindow",
    "SmtpSettings",
    "StaffMail",
    "message_headers",
]

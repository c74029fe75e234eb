"""robot_sender: the judged address is no robot's (mailer-daemon, no-reply, …).

Its local part, in any case, is compared with `localparts` (all robots by default; the
contractor side takes only the bounce senders: a surety's notices come from no-reply
addresses). `reason` may name the address as ``{address}``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailbot.addresses import local_part

from ..rule import ROBOT_LOCALPARTS, Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


class RobotSender:
    name = "robot_sender"
    description = "the address's local part is not a robot's (mailer-daemon, noreply, …)"

    def __init__(self, localparts: tuple[str, ...] = ROBOT_LOCALPARTS,
                 reason: str = "robot sender {address}") -> None:
        self.localparts = localparts
        self.reason = reason

    def check(self, facts: MailFacts, context: Context) -> str | None:
        local = local_part(context.address)
        if local is not None and local.lower() in self.localparts:
            return self.reason.format(address=context.address)
        return None

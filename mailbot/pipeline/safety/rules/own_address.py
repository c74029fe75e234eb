"""own_address: the judged address is not one of ours (a loop of our own mail)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailbot.addresses import same_address

from ..rule import Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


class OwnAddress:
    name = "own_address"
    description = "the address is none of the side's own addresses"

    def __init__(self, reason: str = "our own address") -> None:
        self.reason = reason

    def check(self, facts: MailFacts, context: Context) -> str | None:
        if any(same_address(context.address, own) for own in context.own_addresses):
            return self.reason
        return None

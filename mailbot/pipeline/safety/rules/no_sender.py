"""no_sender: the mail names no address to answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..rule import Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


class NoSender:
    name = "no_sender"
    description = "the mail has a sender address (Reply-To, else From)"

    def check(self, facts: MailFacts, context: Context) -> str | None:
        return None if facts.sender else "no sender address"

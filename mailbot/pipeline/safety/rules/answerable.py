"""answerable: the sender's address is one SMTP can deliver an answer to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailbot.addresses import Unanswerable, reply_address

from ..rule import Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


class Answerable:
    name = "answerable"
    description = "the sender address passes mailbot.addresses.reply_address"

    def check(self, facts: MailFacts, context: Context) -> str | None:
        if not facts.sender:
            return None  # no_sender's to say
        try:
            reply_address(facts.sender)
        except Unanswerable as exc:
            return f"sender address {facts.sender[:120]!r} cannot be answered by SMTP: {exc}"
        return None

"""unambiguous: the sender's header names one mailbox, the same one to every reader."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..rule import Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


class Unambiguous:
    name = "unambiguous"
    description = "the address header names exactly one mailbox all parsers agree on"

    def check(self, facts: MailFacts, context: Context) -> str | None:
        if not facts.sender_ambiguous:
            return None
        return (f"sender address {(facts.sender or '')[:120]!r} is not the one mailbox its "
                f"header names: {facts.sender_ambiguous}")

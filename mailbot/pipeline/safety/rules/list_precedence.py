"""list_precedence: the mail is not list, bulk or junk mail (the Precedence header)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..rule import LIST_PRECEDENCE, Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


class ListPrecedence:
    name = "list_precedence"
    description = "Precedence is not bulk, list or junk"

    def check(self, facts: MailFacts, context: Context) -> str | None:
        if facts.precedence and facts.precedence.lower() in LIST_PRECEDENCE:
            return f"Precedence: {facts.precedence}"
        return None

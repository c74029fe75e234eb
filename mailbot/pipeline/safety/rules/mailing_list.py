"""mailing_list: the mail did not come through a mailing list (List-Id, RFC 2919)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..rule import Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


class MailingList:
    name = "mailing_list"
    description = "the mail has no List-Id header"

    def check(self, facts: MailFacts, context: Context) -> str | None:
        return "mailing list (List-Id)" if facts.list_id else None

"""null_sender: the mail has a return path (a bounce has the null sender, ``<>``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..rule import Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


class NullSender:
    name = "null_sender"
    description = "Return-Path, when present, is not the null sender <>"

    def __init__(self, reason: str = "null sender (bounce)") -> None:
        self.reason = reason

    def check(self, facts: MailFacts, context: Context) -> str | None:
        if facts.return_path is not None and facts.return_path.strip() in ("<>", ""):
            return self.reason
        return None

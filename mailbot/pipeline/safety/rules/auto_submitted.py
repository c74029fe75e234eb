"""auto_submitted: the mail is not machine-sent (RFC 3834 Auto-Submitted).

Set up with `values`, only those Auto-Submitted values object (the contractor side objects
to auto-replies only: the surety's notices are auto-generated); without, any value but
"no" does. `reason` may name the header's value as ``{value}``.

The value is judged by its keyword alone (RFC 3834 §5: ``auto-replied; owner-email=…`` or
``no (a person)`` carry parameters and comments after it)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..rule import Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


_COMMENT = re.compile(r"\([^()]*\)")


def keyword(value: str) -> str:
    """The Auto-Submitted keyword of `value`, lower-case: comments and parameters dropped."""
    text = value
    for _ in range(5):  # nested comments, a few levels; deeper is no honest header
        text = _COMMENT.sub(" ", text)
    return text.split(";", 1)[0].strip().lower()


class AutoSubmitted:
    name = "auto_submitted"
    description = "the mail is not an automatic one (Auto-Submitted absent or \"no\")"

    def __init__(self, values: tuple[str, ...] | None = None,
                 reason: str = "Auto-Submitted: {value}") -> None:
        self.values = values
        self.reason = reason

    def check(self, facts: MailFacts, context: Context) -> str | None:
        value = facts.auto_submitted
        if not value:
            return None
        lowered = keyword(value)
        objects = lowered != "no" if self.values is None else lowered in self.values
        return self.reason.format(value=value) if objects else None

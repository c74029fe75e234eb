"""Text from mail, made safe for a database column whatever the sender put in it.

PostgreSQL refuses a NUL character in a text value ("PostgreSQL text fields cannot contain
NUL"), and no driver can encode a lone surrogate (what Python's decoders leave for bytes
that were not UTF-8) — on SQLite either. A sender's header or body can hold both, and every
value derived from a mail (ledger listing columns, decision and reply JSON, submission and
outbox subjects, a sender in the throttle) may carry them into a statement. `db_text()`
replaces each by U+FFFD (so two values differing only there stay different) and cuts a
value to its column's length; `MailText` is the column type that applies it to every value
bound to the column — inserts, updates and comparisons alike, so a lookup finds what an
insert stored.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_UNSAFE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def db_text(value: str | None, length: int | None = None) -> str | None:
    """`value` without NUL and lone surrogates (each becomes U+FFFD), at most `length`
    characters; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    if "\x00" in value or not value.isascii():
        value = _UNSAFE.sub(REPLACEMENT, value)
    if length is not None and len(value) > length:
        value = value[:length]
    return value


class MailText(TypeDecorator[str]):
    """A text column (unbounded, or `MailText(n)` for VARCHAR(n)) whose values may come
    from a mail: every bound value goes through `db_text()`. The DDL is plain TEXT/VARCHAR."""

    impl = Text
    cache_ok = True

    def __init__(self, length: int | None = None) -> None:
        super().__init__()
        self.max_length = length

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        impl = String(self.max_length) if self.max_length is not None else Text()
        return dialect.type_descriptor(impl)

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return db_text(value, self.max_length)

"""Protocol constants defined once for the config reader, the IMAP source and the outbox.

`TLS_MODES`: how a connection to an IMAP or SMTP server is secured — "ssl" (TLS from the
first byte), "starttls" (upgraded after the greeting) or "none".

`IMAP_KEYWORD`: an IMAP flag keyword as RFC 3501 §9 writes it: an atom (printable ASCII
without the atom-specials ``( ) { % * " \\ ]`` and without space), or a ``\\System`` flag.
"""

from __future__ import annotations

import re

TLS_MODES = ("ssl", "starttls", "none")
IMAP_KEYWORD = re.compile(r'\\?[^\x00-\x20\x7f-\U0010ffff(){%*"\\\]]+')


def is_imap_keyword(word: str) -> bool:
    """Whether `word` may be STOREd as an IMAP flag (see `IMAP_KEYWORD`)."""
    return IMAP_KEYWORD.fullmatch(word) is not None

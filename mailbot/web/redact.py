"""The console's last line against a key in clear: every page is checked against the store's
own key hashes before it leaves, and a key of the store found in it is masked.

The pages are built from masked values (the decision record masks the keys it read, the
guarantee pages never read `key_hash`), but a page also shows what senders typed: a Subject,
a header, a project name. A contractor who types the 認証キー of *another* guarantee into a
Subject puts a key there that no notice of that mail names, so the decision cannot know to
mask it. The store can: every run of 8 to 32 ASCII letters and digits in the page (its NFKC
form, so full-width letters count too; the shape of `parsers.normalize.KEY_RE`; invisible
characters such as a zero-width space between its letters are dropped) is hashed
with the store's secret and looked up in `versions.key_hash`; one that matches is replaced by
its masked form (`Z28Y********`) wherever it occurs.

Only whole runs are looked up: a key written flush against other ASCII letters or digits is
not found here (the decision's own masking still covers a notice's key there).

`mask_key_like` is the blunter tool for what no decision masked and the store may not know
(the subject and sender of a mail not decided yet, a pipeline error): every word that could
be a key is masked.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select

from mailbot.pipeline.decide import mask_key
from mailbot.store import Store
from mailbot.store.schema import versions

# A run of ASCII or full-width letters and digits, possibly with invisible characters
# between them (a zero-width space, a soft hyphen: the reader still sees the key); its NFKC
# form without those is what is looked up.
_ALNUM = r"[A-Za-z0-9\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A]"
_INVISIBLE = r"[\u00AD\u034F\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF]"
_INVISIBLE_RE = re.compile(_INVISIBLE)
_RUN = re.compile(rf"{_ALNUM}(?:{_INVISIBLE}*{_ALNUM}){{7,31}}")
_LONGER = re.compile(rf"{_ALNUM}(?:{_INVISIBLE}*{_ALNUM}){{32,}}")
_CHUNK = 500
_ALNUM = r"A-Za-z0-9\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A"
_WORD = re.compile(rf"(?<![{_ALNUM}])[{_ALNUM}]{{8,32}}(?![{_ALNUM}])")


def mask_key_like(text: str | None) -> str:
    """`text` with every word that could be a key masked (`Z28Y********`): 8 to 32 letters
    and digits with at least one of each (`parsers.normalize.KEY_RE`'s shape), full-width
    forms included, the rest of the text as it was."""

    def one(match: re.Match[str]) -> str:
        word = unicodedata.normalize("NFKC", match.group(0))
        if any(c.isdigit() for c in word) and any(c.isalpha() for c in word):
            return mask_key(word)
        return match.group(0)

    return _WORD.sub(one, text or "")


class KeyRedactor:
    """Masks the store's keys in a page (see the module's docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def redact(self, html: str) -> str:
        runs = self._runs(html)
        if not runs:
            return html
        hashes: dict[str, list[str]] = {}
        for run in runs:
            hashes.setdefault(self.store.hash_key(_plain(run)), []).append(run)
        known = self._known(list(hashes))
        if not known:
            return html
        found = {run for digest in known for run in hashes[digest]}
        return _RUN.sub(lambda m: _masked(m.group(0)) if m.group(0) in found else m.group(0),
                        html)

    @staticmethod
    def _runs(html: str) -> set[str]:
        # A run longer than 32 is no key; `_RUN` would find its first 32 characters.
        spans = [m.span() for m in _LONGER.finditer(html)]
        runs: set[str] = set()
        for match in _RUN.finditer(html):
            start = match.start()
            if any(a <= start < b for a, b in spans):
                continue
            runs.add(match.group(0))
        return runs

    def _known(self, digests: list[str]) -> set[str]:
        known: set[str] = set()
        with self.store.engine.connect() as conn:
            for start in range(0, len(digests), _CHUNK):
                chunk = digests[start:start + _CHUNK]
                known.update(conn.execute(select(versions.c.key_hash).distinct()
                                          .where(versions.c.key_hash.in_(chunk))).scalars())
        return known


def _plain(run: str) -> str:
    return unicodedata.normalize("NFKC", _INVISIBLE_RE.sub("", run))


def _masked(run: str) -> str:
    return mask_key(_plain(run))

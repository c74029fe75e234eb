"""Compare names the way DESIGN.md §4 says: after NFKC and removing white space.

Company-form abbreviations are expanded on both sides first ((株) and ㈱ → 株式会社), since
a notice and a surety's export rarely agree on them.
"""

from __future__ import annotations

from parsers.normalize import fold_spaces, normalize_text

_FORMS = {"(株)": "株式会社", "(有)": "有限会社", "(同)": "合同会社", "(資)": "合資会社",
          "(名)": "合名会社"}


def name_key(text: str) -> str:
    value = fold_spaces(normalize_text(text))
    for short, full in _FORMS.items():
        value = value.replace(short, full)
    return value


def same_name(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and name_key(a) == name_key(b)

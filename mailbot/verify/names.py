"""Compare names the way docs/contracts.md says: after NFKC and removing white space.

The normal form itself (`parsers.normalize.name_key`) is shared with the store, which keys
a contract's guarantees by it.
"""

from __future__ import annotations

from parsers.normalize import name_key

__all__ = ["same_name"]


def same_name(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and name_key(a) == name_key(b)

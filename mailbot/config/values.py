"""Readers of config values: each checks one TOML value and gives it typed, or a `ConfigError`.

A reader takes the `Item` being read. When the key is absent and not required it gives the
field's default. Relative paths are relative to the config file's directory, whichever key
names them (`spool.dir`, `templates.dir`, `password_file`, `attachments`). Addresses we send
from (``[smtp] from``, ``reply_from``, the contractor's ``from``, a listener's ``addresses``)
are a plain ``local@host``, a host without a dot included (``mailbot@localhost``);
addresses we write to (staff, an issuer's submission address) are held to the rule for the
addresses of others (`mailbot.addresses.reply_address`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, time
from fractions import Fraction
from pathlib import Path
from typing import Any

from mailbot.addresses import Unanswerable, is_own_address, reply_address
from mailbot.protocols import TLS_MODES

from .reader import Item, Reader, TomlReader, build
from .secrets import Secret


def text(item: Item) -> Any:
    """A non-empty string."""
    if item.absent:
        return item.default
    value = item.raw
    if not isinstance(value, str) or not value.strip():
        raise item.fail("must be a non-empty string")
    return value


def one_line(item: Item) -> Any:
    """A string that goes into a header or one body line: no control characters."""
    value = text(item)
    if isinstance(value, str) and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise item.fail("must be one line without control characters")
    return value


def any_text(item: Item) -> str:
    """Free text (a signature): anything, as a string."""
    return str(item.data.get(item.key, item.default))


def choice(*options: str) -> Reader:
    """One of `options`; the first when absent."""
    def read(item: Item) -> str:
        value = item.data.get(item.key, options[0])
        if value not in options:
            raise item.fail(f"must be one of {', '.join(options)}, not {value!r}")
        return str(value)
    return read


def tls_mode(default: str) -> Reader:
    """One of `mailbot.protocols.TLS_MODES`; `default` when absent."""
    return choice(default, *(mode for mode in TLS_MODES if mode != default))


def string_list(item: Item) -> tuple[str, ...]:
    """A string or a list of strings, as a tuple; empty when absent."""
    value = item.raw
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise item.fail("must be a string or a list of strings")
    return tuple(value)


def strings(item: Item) -> Any:
    """`string_list`, or the default when absent or empty."""
    return string_list(item) or item.default


def lower_strings(item: Item) -> tuple[str, ...]:
    return tuple(s.lower() for s in string_list(item))


def boolean(item: Item) -> bool:
    value = item.data.get(item.key, item.default)
    if not isinstance(value, bool):
        raise item.fail("must be true or false")
    return value


def count(item: Item) -> int:
    """A whole number of at least 1."""
    value = item.data.get(item.key, item.default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise item.fail("must be a whole number of at least 1")
    return value


def _parsed(item: Item, convert: Callable[[Any], Any], what: str) -> Any:
    """The value `convert` makes of the given one (the default when absent); a value it
    cannot convert fails as not being `what`."""
    value = item.raw
    if value is None:
        return item.default
    try:
        return convert(value)
    except (ValueError, ZeroDivisionError):
        raise item.fail(f"must be {what}, not {value!r}") from None


def ratio(item: Item) -> Fraction:
    """A ratio between 0 and 1 ("4/10", 0.4)."""
    result: Fraction = _parsed(item, lambda value: Fraction(str(value)), 'a ratio like "4/10"')
    if not 0 <= result <= 1:
        raise item.fail("must be between 0 and 1")
    return result


def time_of_day(item: Item) -> time:
    """A time of day (a TOML time or "09:00")."""
    when: time = _parsed(item, lambda value: value if isinstance(value, time)
                         else time.fromisoformat(str(value)), "a time like 09:00")
    return when


def toml_date(example: str) -> Reader:
    """A TOML date (not a string); the error shows `example`."""
    def read(item: Item) -> date | None:
        value = item.raw
        if value is not None and not isinstance(value, date):
            raise item.fail(f"must be a TOML date ({example})")
        return value if value is not None else item.default
    return read


def file_path(item: Item) -> Path | None:
    """A path, relative to the config file's directory unless absolute."""
    value = text(item)
    return None if value is None else beside(item.r, value)


def beside(r: TomlReader, name: str | Path) -> Path:
    """`name` relative to the directory of the config file (the one rule for relative paths)."""
    p = Path(name)
    return p if p.is_absolute() else r.file.parent / p


def files(item: Item) -> tuple[Path, ...]:
    """Files that must exist (attachments), relative to the config file's directory."""
    out = []
    for name in string_list(item):
        p = beside(item.r, name)
        if not p.is_file():
            raise item.fail(f"no such file: {p}")
        out.append(p)
    return tuple(out)


def port(by_tls: dict[str, int], otherwise: int) -> Reader:
    """A TCP port; absent: the usual port of the field `tls`."""
    def read(item: Item) -> int:
        value = item.data.get(item.key)
        if value is None:
            value = by_tls.get(item.value("tls"), otherwise)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
            raise item.fail("must be a TCP port number")
        return value
    return read


def secret(item: Item) -> Any:
    """Where a password is: the environment variable `password_env` or the file
    `password_file` (a `Secret`, read when a connection is opened); never the config file
    itself (the key `password`, when declared, is refused)."""
    if "password" in item.data and item.key == "password":
        raise item.fail("passwords never go in the file: use password_env or password_file")
    env = text(_sibling(item, "password_env"))
    file = text(_sibling(item, "password_file"))
    if env:  # before the file, when both are given
        return Secret(item.r.file, item.where, env=env)
    if file:
        return Secret(item.r.file, item.where, file=beside(item.r, file))
    if item.required:
        raise item.fail("needs password_env or password_file", item.where)
    return item.default


def _sibling(item: Item, key: str) -> Item:
    return Item(item.r, item.data, key, item.where, None, False)


def regex(item: Item) -> re.Pattern[str] | None:
    source = text(item)
    try:
        return re.compile(source) if source else None
    except re.error as exc:
        raise item.fail(f"not a valid regular expression ({exc})") from None


def known_issuer(item: Item) -> str | None:
    """An `[issuers.ID]` key of this file (`context["issuers"]`)."""
    issuer = text(item)
    if issuer is not None and issuer not in item.context["issuers"]:
        raise item.fail(f"no [issuers.{issuer}] table")
    return issuer


def own_address(item: Item) -> Any:
    """An address we send from: a plain local@host (a host without a dot too)."""
    value = text(item)
    if value is not None and not is_own_address(value):
        raise item.fail(f"{value!r} is not an e-mail address we can send from (local@host)")
    return value


def own_addresses(item: Item) -> tuple[str, ...]:
    values = lower_strings(item)
    for value in values:
        if not is_own_address(value):
            raise item.fail(f"{value!r} is not an e-mail address (local@host)")
    return values


def check_recipient(item: Item, value: str, path: str | None = None) -> None:
    """`value` must be an address mailbot can write to (`reply_address`)."""
    try:
        reply_address(value)
    except Unanswerable as exc:
        raise item.fail(f"{value!r} is not an e-mail address ({exc})", path) from None


def recipient(item: Item) -> Any:
    value = text(item)
    if value is not None:
        check_recipient(item, value)
    return value


def recipients(item: Item) -> Any:
    values = string_list(item)
    for value in values:
        check_recipient(item, value)
    return values


def section(cls: Callable[..., Any], *, optional_none: bool = False, **options: Any) -> Reader:
    """A sub-table read into dataclass `cls` (an empty one gives its defaults, or None)."""
    def read(item: Item) -> Any:
        table = item.r.table(item.data, item.key, item.where, optional=True)
        if optional_none and not table:
            return None
        return build(item.r, cls, table, item.path, **options)
    return read

"""Config keys declared once: a dataclass field names its TOML key and the reader of its value.

`key(read, toml=...)` is a dataclass field whose metadata is a `Key`: the TOML key (the field
name unless given; a dotted ``store.url`` is a key in a sub-table), any further keys the same
reader uses, and whether the key must be given. `build()` reads one TOML table into the
dataclass from those declarations alone: keys nobody declared are refused, each field is read
in order by its reader (`mailbot.config.values`), and a reader that needs another field's value
asks `Item.value`, which reads that field first. Every error names the file, the key path and
the reason (`TomlReader.fail`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, TypeVar

from mailbot.errors import UsageError

T = TypeVar("T")
Reader = Callable[["Item"], Any]


class ConfigError(UsageError):
    """A configuration mistake: exit 2, one sentence naming file and key."""


class TomlReader:
    """The config file being read: every error it makes names that file."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, where: str, reason: str) -> ConfigError:
        return ConfigError(f"{self.file}: [{where}] {reason}")

    def table(self, data: dict[str, Any], key: str, where: str = "", optional: bool = False
              ) -> dict[str, Any]:
        value = data.get(key, {} if optional else None)
        if not isinstance(value, dict):
            raise self.fail(f"{where}.{key}".strip("."), "must be a table")
        return value

    def tables(self, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        """An array of tables (`[[key]]`); empty when absent."""
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "must be an array of tables ([[" + key + "]])")
        return value

    def no_extra(self, data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
        extra = sorted(set(data) - set(allowed))
        if extra:
            raise self.fail(where or "top level", f"unknown key {extra[0]!r}")


@dataclass(frozen=True)
class Key:
    """How one dataclass field is read from TOML."""

    read: Reader
    toml: str | None = None  # the key path in the table; None: the field name
    also: tuple[str, ...] = ()  # other keys of the same table this reader uses
    required: bool = False  # absent: an error, even when the dataclass has a default
    when: Callable[[Item], bool] | None = None  # read only when true, else the default


def key(read: Reader, toml: str | None = None, *, also: tuple[str, ...] = (),
        required: bool | None = None, when: Callable[[Item], bool] | None = None,
        default: Any = MISSING, default_factory: Callable[[], Any] | Any = MISSING,
        repr: bool = True) -> Any:  # noqa: A002 — the name dataclasses.field uses
    """A dataclass field read by `read` from TOML key `toml` (the field name by default).

    Without a default the key is required; `required=True` makes it so with one too (the
    default is then what a field skipped by `when` gets)."""
    if required is None:
        required = default is MISSING and default_factory is MISSING
    meta = {"key": Key(read, toml, also, required, when)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, repr=repr, metadata=meta)
    if default is not MISSING:
        return dataclasses.field(default=default, repr=repr, metadata=meta)
    return dataclasses.field(repr=repr, metadata=meta)


@dataclass(frozen=True)
class Spec:
    """One field to read: its name, declaration and dataclass default."""

    name: str
    key: Key
    default: Any  # MISSING when the dataclass has none

    @property
    def path(self) -> tuple[str, ...]:
        """The key path inside the table, e.g. ("store", "url")."""
        return tuple((self.key.toml or self.name).split("."))


def specs(cls: type, keys: Mapping[str, Key] | None = None) -> tuple[Spec, ...]:
    """The fields of dataclass `cls` read from TOML: declared in their metadata, or in `keys`
    (for a dataclass of another package, e.g. `IssuerPolicy`)."""
    out = []
    for f in dataclasses.fields(cls):
        declared = keys.get(f.name) if keys is not None else f.metadata.get("key")
        if declared is None:
            continue
        default = f.default if f.default_factory is MISSING else f.default_factory()
        out.append(Spec(f.name, declared, default))
    return tuple(out)


def allowed_keys(fields: tuple[Spec, ...], extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The keys a table may hold (the first part of each dotted path), in declaration order."""
    keys = [s.path[0] for s in fields] + [k for s in fields for k in s.key.also] + list(extra)
    return tuple(dict.fromkeys(keys))


@dataclass
class Item:
    """One key being read: where it is, its raw value and the field's default."""

    r: TomlReader
    data: dict[str, Any]  # the table holding the key
    key: str
    where: str  # the key path of that table ("" at the top level)
    default: Any = MISSING
    required: bool = True
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    values: Callable[[str], Any] | None = None

    @property
    def path(self) -> str:
        return f"{self.where}.{self.key}".strip(".")

    @property
    def raw(self) -> Any:
        return self.data.get(self.key)

    @property
    def absent(self) -> bool:
        """The key is not given: the reader returns `default`."""
        return self.data.get(self.key) is None and not self.required

    def fail(self, reason: str, path: str | None = None) -> ConfigError:
        return self.r.fail(self.path if path is None else path, reason)

    def value(self, name: str) -> Any:
        """Another field of the same dataclass, read first when it is not read yet."""
        if self.values is None:
            raise KeyError(name)
        return self.values(name)


def check_keys(r: TomlReader, cls: Callable[..., Any], data: dict[str, Any], where: str, *,
               keys: Mapping[str, Key] | None = None, extra: tuple[str, ...] = ()
               ) -> tuple[Spec, ...]:
    """Refuse a key of `data` that no field of `cls` declares; the fields to read."""
    assert isinstance(cls, type)
    fields = specs(cls, keys)
    r.no_extra(data, allowed_keys(fields, extra), where)
    return fields


def read_one(r: TomlReader, read: Reader, data: dict[str, Any], key_: str, where: str,
             default: Any = MISSING) -> Any:
    """One value read outside a dataclass (e.g. a name that the key path is made of)."""
    return read(Item(r, data, key_, where, default, default is MISSING))


def build(r: TomlReader, cls: Callable[..., T], data: dict[str, Any], where: str, *,
          keys: Mapping[str, Key] | None = None, given: Mapping[str, Any] | None = None,
          context: Mapping[str, Any] | None = None, extra: tuple[str, ...] = ()) -> T:
    """The dataclass `cls` read from TOML table `data` at key path `where`.

    `given` fields are not read (their keys are still allowed); `context` is what readers may
    consult (e.g. the issuer IDs); `extra` keys are allowed but read by someone else."""
    fields = check_keys(r, cls, data, where, keys=keys, extra=extra)
    tables: dict[str, dict[str, Any]] = {}
    for spec in fields:  # sub-tables of dotted keys, checked before any value
        for depth in range(1, len(spec.path)):
            head = ".".join(spec.path[:depth])
            if head not in tables:
                parent = tables.get(".".join(spec.path[:depth - 1]), data)
                table = r.table(parent, spec.path[depth - 1], _join(where, *spec.path[:depth - 1]),
                                optional=True)
                tables[head] = table
                inner = [s.path[depth] for s in fields if s.path[:depth] == spec.path[:depth]]
                r.no_extra(table, tuple(inner), _join(where, head))
    values: dict[str, Any] = dict(given or {})
    by_name = {s.name: s for s in fields}

    def value(name: str) -> Any:
        if name not in values:
            spec = by_name[name]
            table = tables.get(".".join(spec.path[:-1]), data)
            item = Item(r, table, spec.path[-1], _join(where, *spec.path[:-1]), spec.default,
                        spec.key.required, context or {}, value)
            skip = spec.key.when is not None and not spec.key.when(item)
            values[name] = spec.default if skip else spec.key.read(item)
        return values[name]

    for spec in fields:
        value(spec.name)
    return cls(**values)


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)

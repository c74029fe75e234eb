"""The admin's configuration file (TOML) loaded into typed objects.

So far: `[store] url` and one `[issuers.ID]` table per issuer with the verification policy
(names, aliases, accepted kinds, eligibility, amount ratios, throttle limits, rule chain).
Errors raise `ConfigError` naming the file, the key path and the reason (and the line when
the TOML parser gives one). Secrets never live here (DESIGN.md §7).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from parsers.model import KINDS

from .errors import UsageError
from .verify.chain import check_chain
from .verify.policy import DEFAULT_CHAIN, AmountRules, IssuerPolicy, Throttle


class ConfigError(UsageError):
    """A configuration mistake: exit 2, one sentence naming file and key."""


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    store_url: str | None = None
    issuers: dict[str, IssuerPolicy] = field(default_factory=dict)

    def issuer(self, name: str) -> IssuerPolicy:
        """The policy of issuer `name` (its ID or any of its names); defaults otherwise."""
        if name in self.issuers:
            return self.issuers[name]
        for policy in self.issuers.values():
            if name in policy.names:
                return policy
        return IssuerPolicy(name=name)


def load_config(path: str | Path | None) -> Config:
    if path is None:
        return Config()
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {file}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    reader = _Reader(file)
    store = reader.table(data, "store", optional=True)
    issuers = reader.table(data, "issuers", optional=True)
    reader.no_extra(data, ("store", "issuers"), "")
    reader.no_extra(store, ("url",), "store")
    return Config(
        path=file,
        store_url=reader.string(store, "url", "store", optional=True),
        issuers={
            key: reader.issuer(reader.table(issuers, key, "issuers"), f"issuers.{key}")
            for key in issuers
        },
    )


class _Reader:
    """Typed access to the parsed TOML with errors that name file and key path."""

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

    def no_extra(self, data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
        extra = sorted(set(data) - set(allowed))
        if extra:
            raise self.fail(where or "top level", f"unknown key {extra[0]!r}")

    def string(self, data: dict[str, Any], key: str, where: str, optional: bool = False
               ) -> str | None:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", "must be a non-empty string")
        return value

    def strings(self, data: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}.{key}", "must be a list of strings")
        return tuple(value)

    def ratio(self, data: dict[str, Any], key: str, where: str, default: Fraction) -> Fraction:
        value = data.get(key)
        if value is None:
            return default
        try:
            ratio = Fraction(str(value))
        except (ValueError, ZeroDivisionError):
            raise self.fail(f"{where}.{key}", f"must be a ratio like \"4/10\", not {value!r}"
                            ) from None
        if not 0 <= ratio <= 1:
            raise self.fail(f"{where}.{key}", "must be between 0 and 1")
        return ratio

    def count(self, data: dict[str, Any], key: str, where: str, default: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(f"{where}.{key}", "must be a whole number of at least 1")
        return value

    def issuer(self, data: dict[str, Any], where: str) -> IssuerPolicy:
        allowed = ("name", "aliases", "accepted_kinds", "awarded_on_or_after", "chain",
                   "amounts", "throttle")
        self.no_extra(data, allowed, where)
        kinds = self.strings(data, "accepted_kinds", where) or KINDS
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise self.fail(f"{where}.accepted_kinds", f"unknown kind {bad[0]!r}")
        start = data.get("awarded_on_or_after")
        if start is not None and not isinstance(start, date):
            raise self.fail(f"{where}.awarded_on_or_after", "must be a TOML date (2026-07-01)")
        chain = self.strings(data, "chain", where) or DEFAULT_CHAIN
        try:
            check_chain(chain)
        except UsageError as exc:
            raise self.fail(f"{where}.chain", str(exc)) from None
        return IssuerPolicy(
            name=self.string(data, "name", where),
            aliases=self.strings(data, "aliases", where) or (),
            accepted_kinds=kinds,
            awarded_on_or_after=start,
            amounts=self._amounts(self.table(data, "amounts", where, True), f"{where}.amounts"),
            throttle=self._throttle(self.table(data, "throttle", where, True),
                                    f"{where}.throttle"),
            chain=chain,
        )

    def _amounts(self, data: dict[str, Any], where: str) -> AmountRules:
        d = AmountRules()
        names = ("advance_max", "intermediate_max", "advances_total_max", "contract_min",
                 "contract_min_low_bid")
        self.no_extra(data, names, where)
        return AmountRules(*(self.ratio(data, n, where, getattr(d, n)) for n in names))

    def _throttle(self, data: dict[str, Any], where: str) -> Throttle:
        d = Throttle()
        names = ("per_sender", "sender_window_minutes", "per_number", "number_window_minutes")
        self.no_extra(data, names, where)
        minutes = (d.sender_window.total_seconds() // 60, d.number_window.total_seconds() // 60)
        return Throttle(
            per_sender=self.count(data, "per_sender", where, d.per_sender),
            sender_window=timedelta(
                minutes=self.count(data, "sender_window_minutes", where, int(minutes[0]))),
            per_number=self.count(data, "per_number", where, d.per_number),
            number_window=timedelta(
                minutes=self.count(data, "number_window_minutes", where, int(minutes[1]))),
        )

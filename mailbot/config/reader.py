"""Typed access to parsed TOML whose every error names the file, the key path and the reason."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from mailbot.errors import UsageError


class ConfigError(UsageError):
    """A configuration mistake: exit 2, one sentence naming file and key."""


class TomlReader:
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

    def string(self, data: dict[str, Any], key: str, where: str, optional: bool = False,
               default: str | None = None) -> str | None:
        value = data.get(key)
        if value is None and optional:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", "must be a non-empty string")
        return value

    def choice(self, data: dict[str, Any], key: str, where: str, options: tuple[str, ...]
               ) -> str:
        value = data.get(key, options[0])
        if value not in options:
            raise self.fail(f"{where}.{key}", f"must be one of {', '.join(options)}, not {value!r}")
        return value

    def strings(self, data: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}.{key}", "must be a string or a list of strings")
        return tuple(value)

    def boolean(self, data: dict[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", "must be true or false")
        return value

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

"""Where a mail password is: an environment variable or a file, read only when needed.

The configuration names the place (`password_env`, `password_file`), never the password.
A `Secret` is read when a connection is opened (`reveal`), so that commands which talk to no
mail server (`config check`, `verify`, `replay`, `status`, `outbox list` …) work without the
daemon's environment; `mailbot run` reveals every secret at start, and `config check` lists
the ones it cannot read as warnings (`--strict` makes them errors).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .reader import ConfigError


@dataclass(frozen=True)
class Secret:
    config: Path  # the config file that names it (errors name it too)
    where: str  # the key path of the table holding it, e.g. "mailboxes.keiyaku"
    env: str | None = None  # password_env
    file: Path | None = None  # password_file, already relative to the config file

    def reveal(self) -> str:
        """The password; a `ConfigError` naming the file and key when it cannot be read."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise self._fail("password_env", f"environment variable {self.env} is not set")
            if not value:
                raise self._fail("password_env", f"environment variable {self.env} is empty")
            return value
        assert self.file is not None
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise self._fail("password_file", f"cannot read {self.file}: {exc.strerror}"
                             ) from None
        except UnicodeDecodeError:
            raise self._fail("password_file", f"{self.file} is not UTF-8 text") from None
        if not value:
            raise self._fail("password_file", f"{self.file} is empty")
        return value

    def problem(self) -> str | None:
        """Why `reveal` would fail, or None when the password can be read now."""
        try:
            self.reveal()
        except ConfigError as exc:
            return str(exc)
        return None

    def _fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(f"{self.config}: [{self.where}.{key}] {reason}")

    def __repr__(self) -> str:  # never the password, only where it is
        place = f"env {self.env}" if self.env is not None else f"file {self.file}"
        return f"Secret({self.where}: {place})"

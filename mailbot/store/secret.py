"""The server secret that keys the HMAC of authentication keys (docs/contracts.md, docs/security.md).

Order: env `MAILBOT_SECRET`, then the file named by env `MAILBOT_SECRET_FILE`, then
`mailbot.secret` in `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=mailbot.secret:…`,
contrib/systemd/mailbot.service). Without any of them, a SQLite store gets a random secret created once in `mailbot.secret` beside the
database file (mode 0600) with a warning; a PostgreSQL store refuses to start, because a
secret invented on one worker would not match the others'.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from mailbot.errors import UsageError

log = logging.getLogger(__name__)

SECRET_FILE_NAME = "mailbot.secret"


def load_secret(store_url: str) -> bytes:
    env = os.environ.get("MAILBOT_SECRET")
    if env:
        return env.encode("utf-8")
    named = os.environ.get("MAILBOT_SECRET_FILE")
    if named:
        return _read_secret_file(Path(named))
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / SECRET_FILE_NAME).exists():
        return _read_secret_file(Path(credentials) / SECRET_FILE_NAME)
    url = make_url(store_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        raise UsageError(
            "no key-hashing secret: set MAILBOT_SECRET or MAILBOT_SECRET_FILE, or load the "
            f"credential {SECRET_FILE_NAME} with systemd's LoadCredential= "
            f"(required for {url.drivername} stores)"
        )
    path = Path(url.database).resolve().parent / SECRET_FILE_NAME
    if path.exists():
        return _read_secret_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_secret_file(path)
    log.warning("created a new key-hashing secret in %s (keep it with the database)", path)
    return _read_secret_file(path)


def write_secret_file(path: Path) -> None:
    """A new random secret in `path`, created with mode 0600; never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")


def _read_secret_file(path: Path) -> bytes:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read the secret file {path}: {exc.strerror}") from exc
    if len(value) < 16:
        raise UsageError(f"the secret in {path} is shorter than 16 characters")
    return value.encode("utf-8")


def key_hash(secret: bytes, auth_key: str) -> str:
    """HMAC-SHA256 of the key: the only form in which a key is ever stored."""
    return hmac.new(secret, auth_key.encode("utf-8"), hashlib.sha256).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))

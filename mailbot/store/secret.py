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

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError

from mailbot.errors import UsageError

from .schema import store_meta

log = logging.getLogger(__name__)

SECRET_FILE_NAME = "mailbot.secret"


def load_secret(store_url: str, configured: Path | None = None) -> bytes:
    """The key-hashing secret; `configured` is the config's `[store] secret_file`."""
    env = os.environ.get("MAILBOT_SECRET")
    if env:
        return env.encode("utf-8")
    named = os.environ.get("MAILBOT_SECRET_FILE")
    if named:
        return _read_secret_file(Path(named))
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / SECRET_FILE_NAME).exists():
        return _read_secret_file(Path(credentials) / SECRET_FILE_NAME)
    if configured is not None:
        return _read_secret_file(configured)
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


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one other use of the secret (e.g. the submissions' bounce tokens): an HMAC
    of the purpose under the secret, so no use learns another's key or the secret."""
    return hmac.new(secret, f"mailbot derived key v1: {purpose}".encode(), hashlib.sha256).digest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


SECRET_CHECK = "secret_check"
_CHECK_LABEL = "mailbot store secret check v1"


def check_secret(engine: Engine, secret: bytes) -> None:
    """The store was created with this secret: its keys are hashed under it. The first
    open records an HMAC of a fixed label under the secret (`store_meta`); a later open
    with another secret — a MAILBOT_SECRET exported for a different store, the wrong
    credential — is refused, since every valid key would be answered `key_mismatch`."""
    mark = hmac.new(secret, _CHECK_LABEL.encode("ascii"), hashlib.sha256).hexdigest()
    with engine.begin() as conn:
        known = conn.execute(select(store_meta.c.value)
                             .where(store_meta.c.name == SECRET_CHECK)).scalar()
        if known is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(store_meta).values(name=SECRET_CHECK, value=mark))
                return
            except IntegrityError:  # another process recorded it first: compare with theirs
                known = conn.execute(select(store_meta.c.value)
                                     .where(store_meta.c.name == SECRET_CHECK)).scalar()
    if known is not None and not hmac.compare_digest(known, mark):
        shown = engine.url.render_as_string(hide_password=True)
        raise UsageError(
            f"the key-hashing secret is not the one the store {shown} was created with "
            "(every key would be a key_mismatch): MAILBOT_SECRET, then MAILBOT_SECRET_FILE, "
            f"then the {SECRET_FILE_NAME} credential are used before the {SECRET_FILE_NAME} "
            "beside a SQLite database; unset the one that belongs to another store")

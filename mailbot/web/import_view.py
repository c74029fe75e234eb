"""The 電子保証 CSV import of the console: a preview that writes nothing, then the import of
exactly the previewed file.

The file is read by `mailbot.store.importfile` as `mailbot store import` reads it (CSV in
UTF-8, with BOM, or cp932; JSON Lines), so the preview lists the CLI's own messages (line
and column, the file named by its uploaded name). A file that reads cleanly is checked
against the store without writing: each event is new (新規 of an unknown number), a change
(変更/訂正/取消 of a known one) or unchanged (already imported: the store skips it), with
the store's own refusals (a 新規 of a number that exists, a change of an unknown or
cancelled one) in `Store.apply`'s wording. Rows for an issuer outside the account's scope
are refused, naming the line.

Between preview and confirm the upload waits server-side (`Uploads`): in a private
temporary folder (0700, files 0600) under a random token, bound to the account, for
`TTL`. Keeping it server-side rather than having the browser post it again means the
confirm imports byte for byte what was previewed (its SHA-256 is checked), works without
JavaScript (a file input cannot be refilled) and spares a second 5 MB upload. The confirm
runs the checks again (the store may have changed meanwhile) and imports only if they
still pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, select

from mailbot.store import GuaranteeEvent, Store
from mailbot.store.importfile import JSONL_SUFFIXES, ImportFileError, iter_import_rows
from mailbot.store.schema import guarantees, versions

TTL = timedelta(minutes=30)
SUFFIXES = (".csv", *JSONL_SUFFIXES)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_CHUNK = 500
Sees = Callable[[str | None], bool]


@dataclass
class Preview:
    """What an import of one file would do."""

    name: str  # the uploaded file's name, as the messages name it
    sha256: str
    errors: list[str] = field(default_factory=list)
    rows: int = 0
    numbers: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    by_event: dict[str, int] = field(default_factory=dict)
    events: list[GuaranteeEvent] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.events)


def display_name(filename: str) -> str:
    """The uploaded file's name as shown: its last component, printable, at most 100."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return base[:100] or "upload.csv"


def suffix_of(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    return suffix if suffix in SUFFIXES else None


def preview(store: Store, path: Path, name: str, sees: Sees, source: str) -> Preview:
    """Read `path` (shown as `name`) and check it against the store, writing nothing;
    `sees` says whether an issuer name is in the account's scope; each event's source
    becomes `source` plus its line."""
    data = path.read_bytes()
    result = Preview(name=name, sha256=hashlib.sha256(data).hexdigest())
    shown = str(path)
    errors: list[str] = []
    lines: list[int] = []
    try:
        for row in iter_import_rows(path):
            result.rows += 1
            errors.extend(m.replace(shown, name) for m in row.errors)
            if row.event is not None:
                result.events.append(replace(row.event, source=f"{source}:{row.line}"))
                lines.append(row.line)
    except ImportFileError as exc:
        errors.extend(m.replace(shown, name) for m in exc.errors)
    if errors:
        result.errors = ImportFileError(errors).errors  # the CLI's cap and "… and N more"
        result.events = []
        return result
    if not result.events:
        result.errors = [f"{name}: 取り込む行がありません"]
        return result
    result.numbers = len({e.guarantee_number for e in result.events})
    result.errors = _check(store, result, lines, name, sees)
    if result.errors:
        result.errors = ImportFileError(result.errors).errors
    return result


@dataclass
class _Latest:
    event: str
    issuer: str | None
    hashes: set[str]


def _check(store: Store, result: Preview, lines: list[int], name: str, sees: Sees
           ) -> list[str]:
    """`Store.apply`'s checks, in its order and words, without writing; counts what it
    would add and skip; refuses rows of an issuer out of scope."""
    errors: list[str] = []
    known = _known(store, {e.guarantee_number for e in result.events})
    for item, line in zip(result.events, lines, strict=True):
        result.by_event[item.event] = result.by_event.get(item.event, 0) + 1
        number = item.guarantee_number
        previous = known.get(number)
        issuer = item.issuer or (previous.issuer if previous else None)
        if (issuer is not None or previous is not None) and (
                not sees(issuer) or (previous is not None and not sees(previous.issuer))):
            errors.append(f"{name}: line {line}, column 発注者名: 保証契約番号 {number} の発注者"
                          "はこのアカウントで扱える発注者ではありません（取り込めません）")
            continue
        row_hash = _row_hash(store, item)
        if previous is not None and row_hash in previous.hashes:
            result.unchanged += 1
            continue
        problem = _refusal(item, previous)
        if problem:
            errors.append(f"{name}:{line}: {problem}")  # as the CLI: FILE:LINE: why
            continue
        if previous is None:
            result.new += 1
            known[number] = _Latest(item.event, item.issuer, {row_hash})
        else:
            result.changed += 1
            previous.event, previous.issuer = item.event, issuer
            previous.hashes.add(row_hash)
    return errors


def _known(store: Store, numbers: Iterable[str]) -> dict[str, _Latest]:
    """Number → its latest event, issuer and every imported row's hash, for those known."""
    wanted = sorted(numbers)
    out: dict[str, _Latest] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            for row in conn.execute(
                    select(versions.c.guarantee_number, versions.c.event, versions.c.issuer)
                    .join(guarantees, and_(
                        guarantees.c.guarantee_number == versions.c.guarantee_number,
                        guarantees.c.latest_version == versions.c.version))
                    .where(guarantees.c.guarantee_number.in_(chunk))):
                out[row.guarantee_number] = _Latest(row.event, row.issuer, set())
            for number, row_hash in conn.execute(
                    select(versions.c.guarantee_number, versions.c.row_hash)
                    .where(versions.c.guarantee_number.in_(chunk))):
                out[number].hashes.add(row_hash)
    return out


def _row_hash(store: Store, item: GuaranteeEvent) -> str:
    """The hash `Store.apply` recognises an event already imported by (its fields, the key
    as its HMAC, not its source)."""
    from dataclasses import asdict

    data = asdict(replace(item, source="", auth_key=None))
    data["key"] = store.hash_key(item.auth_key) if item.auth_key else None
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _refusal(item: GuaranteeEvent, previous: _Latest | None) -> str | None:
    """Why `Store.apply` would refuse `item` after `previous` (its wording)."""
    number = item.guarantee_number
    if item.event == "new":
        if previous is not None:
            return f"guarantee {number} already exists (use 変更 or 訂正)"
        if not item.auth_key:
            return "a 新規 guarantee needs its 認証キー"
        return None
    if previous is None:
        return f"guarantee {number} is not in the store (a 新規 row must come first)"
    if previous.event == "cancellation":
        return f"guarantee {number} is cancelled (取消); nothing can follow"
    return None


@dataclass(frozen=True)
class Upload:
    token: str
    account: str
    name: str
    path: Path
    sha256: str
    expires: datetime


class Uploads:
    """Uploaded import files waiting for their confirm: one private folder per console."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mailbot-web-import-"))  # 0700
        self._lock = threading.Lock()
        self._waiting: dict[str, Upload] = {}

    def keep(self, account: str, name: str, data: bytes, now: datetime) -> Upload:
        self.expire(now)
        token = secrets.token_urlsafe(32)
        suffix = suffix_of(name) or ".csv"
        path = self.folder / f"{token}{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        upload = Upload(token, account, name, path, hashlib.sha256(data).hexdigest(),
                        now + TTL)
        with self._lock:
            self._waiting[token] = upload
        return upload

    def get(self, token: str, account: str, now: datetime) -> Upload | None:
        """The account's upload of `token`, if it has not expired."""
        self.expire(now)
        if not _TOKEN.fullmatch(token):
            return None
        with self._lock:
            upload = self._waiting.get(token)
        if upload is None or upload.account != account:
            return None
        return upload

    def drop(self, token: str) -> None:
        with self._lock:
            upload = self._waiting.pop(token, None)
        if upload is not None:
            upload.path.unlink(missing_ok=True)

    def expire(self, now: datetime) -> None:
        with self._lock:
            old = [t for t, u in self._waiting.items() if u.expires <= now]
        for token in old:
            self.drop(token)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

"""The spool: raw messages on disk, written durably before anyone is told "received".

A message is stored once under its SHA-256 (`ab/abcdef….eml`): written to a temporary file,
fsynced, renamed into place and the folder fsynced (docs/reliability.md, the Mailman switchboard
idea without pickles). Writing the same bytes twice is a no-op, so a sender's retry after a
crash cannot create a second copy.

Raw mail carries clear 認証キー: files are 0600 (`tempfile.mkstemp`) and the folders the spool
makes are 0700, the spool folder itself included (docs/security.md). Retention takes a file
out in two steps (`withdraw`, then `bury` or `put_back`), so that a purge racing with a new
copy of the same bytes never leaves a ledger row without its file (`mailbot/ledger/purge.py`).

`RawStore` is what the ledger, retention, the command line and the console use of a store of
raw messages: this folder, or the `raw_messages` table of a PostgreSQL store
(`mailbot/ledger/rawstore.py`, which every node of a cluster reads).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol, TypeVar

log = logging.getLogger("mailbot.ledger.spool")
FOLDER_MODE = 0o700
WITHDRAWN = ".purging-"  # prefix of a file being purged
A = TypeVar("A")  # what `withdraw` hands to `put_back` / `bury`: opaque to callers


class RawStore(Protocol[A]):
    """Raw messages stored durably under a content name (`name_for(sha256)`)."""

    folder: Path  # local: the daemon's one-daemon-per-spool lock file lives here

    def digest(self, raw: bytes) -> str: ...

    def name_for(self, digest: str) -> str: ...

    def location(self, name: str) -> str:
        """Where `name` is kept, for a person to read (`mailbot quarantine show`)."""
        ...

    def put(self, raw: bytes) -> tuple[str, str]:
        """Store `raw` durably (on return); returns (sha256, name). The same bytes twice is
        a no-op."""
        ...

    def keep(self, name: str, raw: bytes) -> None:
        """`raw` is stored under `name` again if a purge took it since `put`."""
        ...

    def read(self, name: str) -> bytes:
        """The bytes; `FileNotFoundError` when nothing is stored under `name`."""
        ...

    def withdraw(self, name: str) -> A | None:
        """Take `name` aside before it is purged; None when it is not there. From now on a
        `put` of the same bytes stores them anew."""
        ...

    def put_back(self, aside: A, name: str) -> None:
        """A withdrawn message is needed after all (a new row uses it)."""
        ...

    def bury(self, aside: A) -> None:
        """Delete a withdrawn message for good."""
        ...

    def names(self) -> list[str]:
        """Every stored message's name, sorted (withdrawn ones not included)."""
        ...


class Spool:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        _private(self.folder)
        for sub in self.folder.iterdir():  # `ab/` folders an older release made 0755
            if sub.is_dir() and not sub.is_symlink():
                _private(sub)

    @staticmethod
    def digest(raw: bytes) -> str:
        return hashlib.sha256(raw).hexdigest()

    def name_for(self, digest: str) -> str:
        return f"{digest[:2]}/{digest}.eml"

    def path(self, name: str) -> Path:
        return self.folder / name

    def location(self, name: str) -> str:
        return str(self.folder / name)

    def put(self, raw: bytes) -> tuple[str, str]:
        """Store `raw` durably; returns (sha256, spool name)."""
        digest = self.digest(raw)
        name = self.name_for(digest)
        self._write(name, raw)
        return digest, name

    def keep(self, name: str, raw: bytes) -> None:
        """`raw` is on disk under `name` again if a purge took it since `put`."""
        if not (self.folder / name).exists():
            self._write(name, raw)

    def _write(self, name: str, raw: bytes) -> None:
        final = self.folder / name
        if final.exists() and final.stat().st_size == len(raw):
            return
        if not final.parent.is_dir():
            final.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
            _private(final.parent)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".incoming-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    # -- retention ------------------------------------------------------------------------
    def withdraw(self, name: str) -> Path | None:
        """Rename `name` aside before it is purged; None when it is not there. From now on a
        `put` of the same bytes writes a new file. A file a crashed purge left aside is
        withdrawn again (this purge puts it back or deletes it), not left behind."""
        final = self.folder / name
        aside = final.with_name(WITHDRAWN + final.name)
        try:
            os.replace(final, aside)
        except FileNotFoundError:
            return aside if aside.exists() else None
        return aside

    def put_back(self, aside: Path, name: str) -> None:
        """A withdrawn file is needed after all (a new row uses it)."""
        os.replace(aside, self.folder / name)

    def bury(self, aside: Path) -> None:
        """Delete a withdrawn file for good."""
        aside.unlink(missing_ok=True)
        _fsync_dir(aside.parent)

    def names(self) -> list[str]:
        """Every stored message's name (`ab/….eml`), sorted: what a purge test lists."""
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.glob("*/*.eml")
                      if not p.name.startswith("."))


def _private(folder: Path) -> None:
    """Make `folder` 0700; a folder we cannot change (not ours) is left, with a warning."""
    try:
        if folder.stat().st_mode & 0o777 != FOLDER_MODE:
            os.chmod(folder, FOLDER_MODE)
    except PermissionError:
        log.warning("spool folder %s: cannot make it 0700 (owned by another user); raw mail "
                    "in it holds clear keys", folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The spool: raw messages on disk, written durably before anyone is told "received".

A message is stored once under its SHA-256 (`ab/abcdef….eml`): written to a temporary file,
fsynced, renamed into place and the folder fsynced (docs/reliability.md, the Mailman switchboard
idea without pickles). Writing the same bytes twice is a no-op, so a sender's retry after a
crash cannot create a second copy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class Spool:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def digest(raw: bytes) -> str:
        return hashlib.sha256(raw).hexdigest()

    def name_for(self, digest: str) -> str:
        return f"{digest[:2]}/{digest}.eml"

    def path(self, name: str) -> Path:
        return self.folder / name

    def put(self, raw: bytes) -> tuple[str, str]:
        """Store `raw` durably; returns (sha256, spool name)."""
        digest = self.digest(raw)
        name = self.name_for(digest)
        final = self.folder / name
        if final.exists() and final.stat().st_size == len(raw):
            return digest, name
        final.parent.mkdir(parents=True, exist_ok=True)
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
        return digest, name

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

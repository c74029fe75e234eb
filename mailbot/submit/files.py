"""The bytes of a notice's PDF and of the extra files a rule names.

A notice read by `parsers` names where it came from (`attachment:お知らせ.pdf#page=1`,
`attachment:書類.zip/お知らせ.pdf#page=1`); the submission attaches that PDF itself, taken
out of any zip, under its own (sanitised) file name.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from parsers.archive import expand_zip, is_zip
from parsers.limits import Limits
from parsers.mime import Attachment, MailContents, sanitize_name


@dataclass(frozen=True)
class File:
    name: str
    data: bytes
    content_type: str = "application/pdf"


def source_of(origin: str) -> str | None:
    """`attachment:a.zip/b.pdf#page=2` → `attachment:a.zip/b.pdf`; None for body text."""
    path = origin.split("#", 1)[0]
    return path if path.startswith("attachment:") or "/attachment:" in path else None


def attachments_by_origin(contents: MailContents, limits: Limits) -> dict[str, File]:
    """Every attachment of a walked mail and every member of its zips, by origin."""
    found: dict[str, File] = {}
    pending = [item for item in contents.items if isinstance(item, Attachment)]
    while pending:
        item = pending.pop(0)
        found[item.origin] = File(item.name, item.data, item.content_type)
        if is_zip(item.data):
            for member in expand_zip(item.data, item.origin, limits).members:
                pending.append(Attachment(f"{item.origin}/{member.name}", member.name,
                                          member.data))
    return found


def notice_pdf(attachments: dict[str, File], origin: str) -> File | None:
    """The PDF a notice was read from, or None (typed in the body, or not found again)."""
    source = source_of(origin)
    if source is None:
        return None
    found = attachments.get(source)
    if found is None:
        return None
    name = sanitize_name(found.name.rsplit("/", 1)[-1]) or "notice.pdf"
    if not name.lower().endswith(".pdf"):
        name += ".pdf"
    return File(name, found.data, "application/pdf")


def read_file(path: Path) -> File:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return File(path.name, path.read_bytes(), content_type)

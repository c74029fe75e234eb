"""Plain data that crosses the reading stages: notices, problems and the result of one source.

Everything here is a frozen dataclass or a list of them, so results can be pickled across
worker processes, compared in tests and turned into the `mailbot parse --json` contract
(docs/contracts.md) without any knowledge of where the bytes came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


# docs/contracts.md: the closed set of problem codes. Add new ones only by extending this tuple
# together with docs/contracts.md.
class ProblemCode(StrEnum):
    """The closed set of problem codes."""

    NO_NOTICE_FOUND = "no_notice_found"
    """Nothing in the message is a notice."""
    INCOMPLETE_NOTICE = "incomplete_notice"
    """A number without its key, or a key without its number."""
    ENCRYPTED_PDF = "encrypted_pdf"
    """The PDF needs a user password."""
    ENCRYPTED_ARCHIVE = "encrypted_archive"
    """The zip is password-protected (the PPAP habit)."""
    NO_TEXT_LAYER = "no_text_layer"
    """A scanned, image-only PDF."""
    UNREADABLE_ATTACHMENT = "unreadable_attachment"
    """Corrupt, truncated or unsupported; also glyphs no engine can map."""
    ATTACHMENT_TOO_LARGE = "attachment_too_large"
    """Over the size limits, or the PDF reader ran out of memory."""
    READ_TIMEOUT = "read_timeout"
    """The PDF took longer than the time allowed."""
    TOO_MANY_PARTS = "too_many_parts"
    """More MIME parts than the limit."""


PROBLEM_CODES: tuple[str, ...] = tuple(code.value for code in ProblemCode)

KINDS: tuple[str, ...] = ("前払金保証", "中間前払金保証", "契約保証")


@dataclass(frozen=True)
class Notice:
    """One guarantee number + authentication key pair read from a PDF page or a mail body."""

    guarantee_number: str
    auth_key: str
    kind: str | None = None
    project_name: str | None = None
    contractor: str | None = None
    surety: str | None = None
    origin: str = "body"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    """Something that kept a part of the source from being read, with a closed `code`."""

    code: str
    origin: str
    detail: str

    def __post_init__(self) -> None:
        if self.code not in PROBLEM_CODES:
            raise ValueError(f"unknown problem code {self.code!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Ignored:
    """An attachment that cannot hold a notice and was not searched (an image, an office
    document, a program package …): a line of the audit trail, never a problem."""

    origin: str
    kind: str  # "document" | "package" | "image" | "archive" | "other" (see parsers.filekind)
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ParseResult:
    """What one source (an .eml or a bare PDF) yielded.

    `warnings` carries facts worth an audit line that are not problems of the contract,
    such as a lossy charset decode; `ignored` names the attachments that cannot hold a
    notice and were left unread. Neither is part of the JSON contract.
    """

    source: str
    notices: list[Notice] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "notices": [n.to_dict() for n in self.notices],
            "problems": [p.to_dict() for p in self.problems],
        }

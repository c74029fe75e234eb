"""Bounds on the work one message may cause (docs/reliability.md: bounded work).

One frozen object passed down every reading stage, so an admin's config or a test can
tighten a single number without touching the readers.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 50 * MiB
    max_attachment_bytes: int = 25 * MiB
    max_parts: int = 200
    # Archives: members, total expansion, nesting (zip in zip, mail in zip).
    max_archive_members: int = 200
    max_archive_bytes: int = 100 * MiB
    max_archive_ratio: int = 200
    max_depth: int = 3
    # PDF reading, enforced in the worker process.
    max_pdf_pages: int = 50
    pdf_memory_bytes: int = 256 * MiB
    pdf_timeout_s: float = 20.0

"""Read every notice in a source (an .eml or a bare PDF): the reading library's entry point.

`Reader` walks the message (`mime`), tells what each attachment is (`filekind`), opens
archives (`archive`), sends PDFs to a runner (`sandbox`: worker pool or inline) and reads
typed bodies (`fields`), keeping MIME order so that a notice is reported once, where it says
the most. An attachment that cannot hold a notice (an image, an office document, any other
file) is not searched: it is listed in `ParseResult.ignored`, and nothing about it, not its
size nor its damage, is a problem. `read_many` keeps several sources in flight so the
workers stay busy, and yields results in input order.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from .archive import expand_zip
from .fields import read_fields, text_lines
from .filekind import ARCHIVE, PDF, ZIP_MAGIC, extension, sniff
from .layouts import generic_layout
from .limits import Limits
from .mime import Attachment, BodyText, MailContents, sanitize_name, walk_message
from .model import Ignored, Notice, ParseResult, Problem
from .pdfread import PdfReading
from .sandbox import InlineRunner, PdfPool, PdfRunner, WorkerStopped


@dataclass
class _Pending:
    """One source being read: ordered pieces, some of them PDF readings still running."""

    source: str
    pieces: list[PdfReading | tuple[Future[PdfReading], str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)

    def add(self, *problems: Problem) -> None:
        if problems:
            self.pieces.append(PdfReading(problems=list(problems)))


@dataclass
class _Whole:
    """One source being read whole in a worker, with its bytes for a second reading."""

    source: str
    name: str
    data: bytes
    future: Future[ParseResult]


def _read_source(data: bytes, source: str, name: str, limits: Limits) -> ParseResult:
    """Inside a pool worker: one whole source, its PDFs read inline under the worker's limits."""
    return Reader(InlineRunner(limits), limits).read_bytes(data, source, name)


def read_in_one_call(pool: PdfPool, data: bytes, source: str) -> ParseResult:
    """`data` read whole in one call of `pool` (a `parsers.sandbox.PdfPool`): one timeout
    (`pool.limits.pdf_timeout_s`) bounds the whole reading, however many PDFs and parts it
    holds. Raises when the call fails or times out; no second reading PDF by PDF (for a
    caller that must answer in bounded time, like the console's mail page)."""
    return pool.call_result(pool.submit_call(_read_source, data, source, source, pool.limits))


class Reader:
    """Reads sources with one PDF runner; the caller owns (and closes) the runner."""

    def __init__(self, runner: PdfRunner | None = None, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.runner = runner or InlineRunner(self.limits)

    # -- public ------------------------------------------------------------------
    def read_bytes(self, data: bytes, source: str, name: str | None = None) -> ParseResult:
        return self._finish(self._start(data, source, name))

    def read_many(self, paths: Iterable[str | Path], window: int = 16) -> Iterator[ParseResult]:
        """Results in input order, with up to `window` sources read ahead.

        With a worker pool (`PdfPool.submit_call`) each source is read whole in a worker —
        MIME, archives and PDFs — so that every core parses mail, not only PDFs. A source
        whose whole reading fails there (a timeout, a worker dying in PDFium, memory) is read
        again here the usual way, PDF by PDF in the sandbox, and gets the usual verdicts."""
        submit_call = getattr(self.runner, "submit_call", None)
        queue: collections.deque[_Pending | _Whole] = collections.deque()
        for path in paths:
            p = Path(path)
            try:
                data = p.read_bytes()
            except OSError as exc:
                pending = _Pending(str(path))
                pending.add(Problem("unreadable_attachment", "message", f"cannot read {path}: {exc}"))
                queue.append(pending)
            else:
                if submit_call is None:
                    queue.append(self._start(data, str(path), p.name))
                else:
                    future = submit_call(_read_source, data, str(path), p.name, self.limits)
                    queue.append(_Whole(str(path), p.name, data, future))
            if len(queue) >= window:
                yield self._take(queue.popleft())
        while queue:
            yield self._take(queue.popleft())

    def _take(self, item: _Pending | _Whole) -> ParseResult:
        if isinstance(item, _Pending):
            return self._finish(item)
        try:
            result: ParseResult = self.runner.call_result(item.future)  # type: ignore[attr-defined]
            return result
        except WorkerStopped:
            raise
        except Exception:  # the whole reading failed: PDF by PDF, with the usual verdicts
            return self._finish(self._start(item.data, item.source, item.name))

    # -- stages --------------------------------------------------------------------
    def _start(self, data: bytes, source: str, name: str | None) -> _Pending:
        pending = _Pending(source)
        try:
            if data.lstrip()[:5] == b"%PDF-" or (name or "").lower().endswith(".pdf"):
                label = sanitize_name(name or "document.pdf")
                self._add_attachment(pending, Attachment(f"file:{label}", label, data), depth=0)
            else:
                self._add_contents(pending, walk_message(data, self.limits), depth=0)
        except Exception as exc:  # last line of defence: one source never stops the others
            pending.add(Problem("unreadable_attachment", "message", f"could not be read ({exc!r:.160})"))
        return pending

    def _add_contents(self, pending: _Pending, contents: MailContents, depth: int) -> None:
        pending.warnings.extend(contents.warnings)
        for item in contents.items:
            if isinstance(item, Problem):
                pending.add(item)
            elif isinstance(item, BodyText):
                pending.pieces.append(_read_text(item))
            else:
                self._add_attachment(pending, item, depth)

    def _add_attachment(self, pending: _Pending, item: Attachment, depth: int) -> None:
        what = sniff(item.name, item.data, item.content_type)
        size, limit = len(item.data), self.limits.max_attachment_bytes
        if not what.holds_notices:
            pending.ignored.append(Ignored(item.origin, what.kind, f"{what.label}: not searched"
                                           f" for notices ({size:,} bytes)"))
        elif size > limit:
            pending.add(Problem("attachment_too_large", item.origin,
                                f"{size:,} bytes, over the limit of {limit:,}"))
        elif what.kind == ARCHIVE and item.data[:4] in ZIP_MAGIC:
            self._add_zip(pending, item, depth)  # a damaged zip: expand_zip says how
        elif what.kind == PDF and not what.damaged:
            pending.pieces.append((self.runner.submit(item.data, item.origin), item.origin))
        else:  # named .pdf or .zip, and not one
            kind = extension(item.name).upper()
            pending.add(
                Problem("unreadable_attachment", item.origin, f"the file named .{kind.lower()} "
                        f"is not a {kind} (damaged, or another format renamed)")
            )

    def _add_zip(self, pending: _Pending, item: Attachment, depth: int) -> None:
        if depth >= self.limits.max_depth:
            pending.add(Problem("attachment_too_large", item.origin, "archives nested too deeply"))
            return
        expansion = expand_zip(item.data, item.origin, self.limits)
        pending.add(*expansion.problems)
        pending.ignored.extend(expansion.ignored)
        for member in expansion.members:
            origin = f"{item.origin}/{member.name}"
            if member.name.lower().endswith(".eml"):
                inner = walk_message(member.data, self.limits, prefix=f"{origin}/")
                self._add_contents(pending, inner, depth + 1)
            else:
                self._add_attachment(pending, Attachment(origin, member.name, member.data), depth + 1)

    def _finish(self, pending: _Pending) -> ParseResult:
        result = ParseResult(pending.source, warnings=pending.warnings, ignored=pending.ignored)
        problems: list[Problem] = []
        # The same pair typed in the body and in the attached PDF is one notice: keep the
        # occurrence that says the most (the PDF's kind and names), else the first.
        kept: dict[tuple[str, str], int] = {}
        readings = [piece if isinstance(piece, PdfReading) else self._result(*piece)
                    for piece in pending.pieces]
        for reading in readings:
            for notice in reading.notices:
                key = (notice.guarantee_number, notice.auth_key)
                if key not in kept:
                    kept[key] = len(result.notices)
                    result.notices.append(notice)
                elif _richness(notice) > _richness(result.notices[kept[key]]):
                    result.notices[kept[key]] = notice
            if reading.lone_numbers and set(reading.lone_numbers) <= {
                    n.guarantee_number for other in readings if other is not reading
                    for n in other.notices}:
                # A cover line naming the number of a notice the mail carries: not incomplete.
                continue
            problems.extend(p for p in reading.problems if p not in problems)
        if not result.notices and not problems:
            problems.append(
                Problem(
                    "no_notice_found",
                    "message",
                    "no 保証契約番号 with its 認証キー was found in the mail or its attachments",
                )
            )
        result.problems = problems
        return result


    def _result(self, future: Future[PdfReading], origin: str) -> PdfReading:
        try:
            return self.runner.result(future, origin)
        except WorkerStopped:
            raise  # being shut down is not a verdict on the document
        except Exception as exc:  # a reader bug must cost one attachment, not the mail
            detail = f"the PDF reader failed ({exc!r:.160})"
            return PdfReading(problems=[Problem("unreadable_attachment", origin, detail)])


def _richness(notice: Notice) -> int:
    fields = (notice.kind, notice.project_name, notice.contractor, notice.surety)
    return sum(value is not None for value in fields)


def _read_text(item: BodyText) -> PdfReading:
    reading = read_fields(text_lines(item.text), generic_layout(), item.origin)
    problems = []
    if reading.incomplete:
        problems.append(
            Problem(
                "incomplete_notice",
                item.origin,
                "the text gives a guarantee number or an authentication key without the other "
                "(or one broken across lines)",
            )
        )
    return PdfReading(list(reading.notices), problems, reading.lone_numbers)

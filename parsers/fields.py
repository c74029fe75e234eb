"""Read labelled values by position: label → value on the same line, the next cell, or below.

Input is a page (or a mail body) as lines of segments; a segment is a run of text with its
horizontal extent, split where a PDF line has a wide gap (a table cell boundary or a
label/value gap). The notice's own prose mentions 「保証契約番号」と「認証キー」 too, so a
label only counts where it starts a segment (or follows white space) and is followed by a
separator, white space or the end of the segment; its value must then validate
(`normalize.canonical_number` / `canonical_key`). Fields are grouped into notices in reading
order: a field seen twice starts the next notice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .layouts import Layout
from .model import KINDS, Notice
from .normalize import canonical_key, canonical_number, clean_value, fold_spaces, normalize_text


@dataclass(frozen=True)
class Segment:
    text: str
    x0: float
    x1: float


@dataclass(frozen=True)
class Line:
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)


@dataclass
class Record:
    """Fields of one notice being assembled."""

    values: dict[str, str] = field(default_factory=dict)

    def complete(self) -> bool:
        return "guarantee_number" in self.values and "auth_key" in self.values

    def partial(self) -> bool:
        return ("guarantee_number" in self.values) != ("auth_key" in self.values)


@dataclass
class PageReading:
    notices: list[Notice]
    incomplete: bool


_PREFIX = re.compile(r"^[\s>・■●◆◇○□▪*※\-]*")
_SEPARATOR = re.compile(r"^\s*[:=]\s*|^\s+|^$")
_SEPARATOR_PREFIX = re.compile(r"^[\s:=]+")
_NUMBER_TOKEN = re.compile(r"[0-9]{3,}\s*-\s*[0-9]{3,}[A-Za-z]?(?![A-Za-z0-9])")
_KEY_TOKEN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{8,32}(?![A-Za-z0-9])")


def text_lines(text: str) -> list[Line]:
    """A mail body as lines; tabs (HTML table cells) separate segments."""
    lines = []
    for raw in normalize_text(text).splitlines():
        cells = [c.strip() for c in raw.split("\t")]
        segs = tuple(Segment(c, float(i), i + 0.9) for i, c in enumerate(cells) if c)
        if segs:
            lines.append(Line(segs))
    return lines


@dataclass(frozen=True)
class _Hit:
    field: str
    line: int
    seg: int
    start: int  # where the label starts in the segment text
    value_start: int  # where the value may start (after the separator)


def _hits_in_segment(layout: Layout, text: str, line: int, seg: int) -> list[_Hit]:
    hits: list[_Hit] = []
    prefix_end = _PREFIX.match(text).end()  # type: ignore[union-attr]
    for match in layout.label_re.finditer(text):
        start = match.start()
        at_start = start == prefix_end
        if not at_start and not (start > 0 and text[start - 1] in " \t,、，。>"):
            continue
        sep = _SEPARATOR.match(text[match.end() :])
        if sep is None:
            continue
        hits.append(
            _Hit(layout.field_of(match.group(0)), line, seg, start, match.end() + sep.end())
        )
    return hits


def _value_candidates(lines: list[Line], hits: list[_Hit], idx: int) -> list[str]:
    """Where the value of hits[idx] may be, most likely first."""
    hit = hits[idx]
    seg = lines[hit.line].segments[hit.seg]
    nxt = hits[idx + 1] if idx + 1 < len(hits) else None
    end = nxt.start if nxt and nxt.line == hit.line and nxt.seg == hit.seg else len(seg.text)
    inline = seg.text[hit.value_start : end].strip()
    if inline:
        return [inline]
    candidates = []
    segments = lines[hit.line].segments
    label_segs = {h.seg for h in hits if h.line == hit.line}
    if hit.seg + 1 < len(segments) and hit.seg + 1 not in label_segs:
        candidates.append(segments[hit.seg + 1].text)
    if hit.line + 1 < len(lines):
        below = lines[hit.line + 1]
        label_lines = {h.line for h in hits}
        # Header row of a table: the value is the cell under the label.
        for cell in below.segments:
            if cell.x0 < seg.x1 and cell.x1 > seg.x0:
                candidates.append(cell.text)
                break
        if hit.line + 1 not in label_lines:
            candidates.append(below.text)
    return candidates


def _validate(field_name: str, value: str) -> str | None:
    value = _SEPARATOR_PREFIX.sub("", value)
    if field_name == "guarantee_number":
        token = _NUMBER_TOKEN.search(value)
        return canonical_number(token.group(0)) if token else None
    if field_name == "auth_key":
        token = _KEY_TOKEN.search(value)
        return canonical_key(token.group(0)) if token else None
    if field_name == "kind":
        folded = fold_spaces(value)
        return next((k for k in sorted(KINDS, key=len, reverse=True) if k in folded), None)
    return clean_value(value)


def read_fields(lines: list[Line], layout: Layout, origin: str) -> PageReading:
    """All notices on one page or body; `incomplete` if a number or key stood alone."""
    hits = [
        hit
        for li, line in enumerate(lines)
        for si, seg in enumerate(line.segments)
        for hit in _hits_in_segment(layout, seg.text, li, si)
    ]
    records: list[Record] = []
    current = Record()
    for idx, hit in enumerate(hits):
        value = None
        for candidate in _value_candidates(lines, hits, idx):
            value = _validate(hit.field, candidate)
            if value is not None:
                break
        if value is None:
            continue
        if hit.field in current.values:
            records.append(current)
            current = Record()
        current.values[hit.field] = value
    records.append(current)
    surety = _find_surety(lines, layout)
    notices = [
        Notice(
            guarantee_number=r.values["guarantee_number"],
            auth_key=r.values["auth_key"],
            kind=r.values.get("kind"),
            project_name=r.values.get("project_name"),
            contractor=r.values.get("contractor"),
            surety=surety if origin != "body" else None,
            origin=origin,
        )
        for r in records
        if r.complete()
    ]
    return PageReading(notices, any(r.partial() for r in records))


def _find_surety(lines: list[Line], layout: Layout) -> str | None:
    folded = fold_spaces("".join(line.text for line in lines))
    return next((s for s in layout.sureties if s in folded), None)

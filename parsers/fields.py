"""Read labelled values by position: label → value on the same line, the next cell, or below.

Input is a page (or a mail body) as lines of segments; a segment is a run of text with its
horizontal extent, split where a PDF line has a wide gap (a table cell boundary or a
label/value gap). The notice's own prose mentions 「保証契約番号」と「認証キー」 too, so a
label only counts where it starts a segment (after list marks and brackets) or follows white
space, and is followed by a separator, white space or the end of the segment. A value must
then be exactly a value: the first word of the text after the label, of the next cell, or of
the line below, validated whole (`normalize.canonical_number` / `canonical_key`), never a
pattern found somewhere inside prose. A header row of labels reads the cells below it, one
record per row.

Fields are grouped into notices in reading order: a field seen twice starts the next notice.
When any number or key stands without its partner (or a value continues on the next line)
the unit is `incomplete` and yields no notice at all: a pairing guessed from a list would be
a wrong notice, and no notice is better than a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .layouts import Layout
from .model import KINDS, Notice
from .normalize import (
    canonical_key,
    canonical_number,
    clean_value,
    fold_spaces,
    is_ascii_lookalike,
    normalize_text,
)

MAX_BODY_CHARS = 200_000  # a typed body longer than this is read up to here
#: Put by `geometry` where a glyph may or may not belong to the letter-spaced value beside it:
#: a number or key running into it is not read (it could be one character short or long).
DOUBT = "\u2063"


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
    # Numbers that stood alone, without any key (and nothing else in doubt): a typed body may
    # name the number of a notice attached to the same mail ("保証契約番号：…" as a cover line).
    lone_numbers: tuple[str, ...] = ()


# List marks and opening brackets that may stand before a label: 1. ① ■ 【 「 （ → ★ …
_PREFIX = re.compile(
    r"^[\s・■□●○◆◇▪▫★☆※*→⇒-]*(?:[0-9]{1,2}[.)]|[\u2460-\u2473]|\([0-9]{1,2}\))?"
    r"[\s・■□●○◆◇▪▫★☆※*→⇒-]*[【「『\[(<〈《]?"
)
_BEFORE = " \t,、，。"
# After a label: an optional closing bracket, then a separator, white space or the end.
_SEPARATOR = re.compile(
    r"^(?:[】」』\])>〉》]\s*[:=、,→]?\s*|\s*(?:[:=、,→(]|は)\s*|\s+|$)"
)
_NUMBER_WORD = re.compile(r"[0-9]+-[0-9]+[A-Za-z]?")
_ALNUM_WORD = re.compile(r"[A-Za-z0-9]+")
_HYPHEN_SPACES = re.compile(r"(?<=[0-9])\s*-\s*(?=[0-9])")
_LEADING_SEPARATORS = re.compile(r"^[\s:=、,]+")
_QUOTE = re.compile(r"^\s*>")
_CELL_BREAK = re.compile(r"\t|[ \u3000]{2,}")


def text_lines(text: str) -> list[Line]:
    """A mail body as lines; tabs (HTML table cells) separate segments.

    Quoted lines (`> …`) belong to an earlier mail and are left out: a reply quoting a
    stale notice must not submit its key again.
    """
    lines = []
    for raw in text[:MAX_BODY_CHARS].splitlines():
        if _QUOTE.match(raw):
            continue
        # Tabs (HTML cells) and runs of spaces (a table typed with full-width spaces) part cells.
        cells = [normalize_text(c).strip() for c in _CELL_BREAK.split(raw)]
        # A blank line stays, as a line without segments: it ends a paragraph.
        lines.append(Line(tuple(Segment(c, float(i), i + 0.9) for i, c in enumerate(cells) if c)))
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
    prefix = _PREFIX.match(text)  # every part of the pattern is optional: it always matches
    prefix_end = prefix.end() if prefix else 0
    for match in layout.label_re.finditer(text):
        start = match.start()
        if start != prefix_end and not (start > 0 and text[start - 1] in _BEFORE):
            continue
        sep = _SEPARATOR.match(text[match.end() :])
        if sep is None:
            continue
        hits.append(
            _Hit(layout.field_of(match.group(0)), line, seg, start, match.end() + sep.end())
        )
    return hits


_WORD = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


def _first_word(text: str) -> str | None:
    """The letters-and-digits word a value starts with, if it ends cleanly: at white space,
    punctuation or Japanese text — not at an ASCII look-alike such as ① or Ⅸ, which would
    mean the real value is longer than what we could read."""
    text = _LEADING_SEPARATORS.sub("", _HYPHEN_SPACES.sub("-", text))
    match = _WORD.match(text[:80])
    if match is None or match.end() > 64:
        return None
    after = text[match.end() : match.end() + 1]
    if after and (after in ("-", DOUBT) or is_ascii_lookalike(after)):
        return None
    return match.group(0)


def _validate(field_name: str, value: str) -> str | None:
    value = _LEADING_SEPARATORS.sub("", value).strip()
    if field_name == "guarantee_number":
        word = _first_word(value)
        return canonical_number(word) if word and _NUMBER_WORD.fullmatch(word) else None
    if field_name == "auth_key":
        word = _first_word(value)
        return canonical_key(word) if word and _ALNUM_WORD.fullmatch(word) else None
    value = value.replace(DOUBT, "")  # a name may run on across a doubtful gap
    if field_name == "kind":
        folded = fold_spaces(value)
        return next((k for k in sorted(KINDS, key=len, reverse=True) if k in folded), None)
    return clean_value(value)


class _Page:
    """One unit's lines with its label hits indexed once."""

    def __init__(self, lines: list[Line], layout: Layout) -> None:
        self.lines = lines
        self.hits = [
            hit
            for li, line in enumerate(lines)
            for si, seg in enumerate(line.segments)
            for hit in _hits_in_segment(layout, seg.text, li, si)
        ]
        self.label_lines = {h.line for h in self.hits}
        self.label_segs = {(h.line, h.seg) for h in self.hits}
        self.header_lines = {
            li for li in self.label_lines if self._is_header_row(li)
        }

    def _is_header_row(self, li: int) -> bool:
        """A table header: at least two cells on the line, each nothing but a label."""
        cells = [h for h in self.hits if h.line == li]
        segs = self.lines[li].segments
        bare = [h for h in cells if not segs[h.seg].text[h.value_start :].strip()]
        return len(bare) >= 2 and len(bare) == len(cells) == len(segs)


def _observations(page: _Page) -> list[tuple[str, str | None, bool]]:
    """(field, validated value or None, continues-on-next-line) in reading order."""
    out: list[tuple[str, str | None, bool]] = []
    for idx, hit in enumerate(page.hits):
        if hit.line in page.header_lines:
            continue
        value, continued = _read_value(page, idx)
        out.append((hit.field, value, continued))
    for li in sorted(page.header_lines):
        out.extend(_table_rows(page, li))
    return out


def _read_value(page: _Page, idx: int) -> tuple[str | None, bool]:
    hit = page.hits[idx]
    segments = page.lines[hit.line].segments
    seg = segments[hit.seg]
    nxt = page.hits[idx + 1] if idx + 1 < len(page.hits) else None
    same_seg = nxt is not None and (nxt.line, nxt.seg) == (hit.line, hit.seg)
    inline = seg.text[hit.value_start : nxt.start if same_seg and nxt else len(seg.text)].strip()
    candidates: list[tuple[str, int]] = []  # (text, the line it stands on)
    after = hit.seg + 1
    while after < len(segments) and _LEADING_SEPARATORS.fullmatch(segments[after].text):
        after += 1  # a colon standing alone between label and value
    if inline:
        candidates.append((inline, hit.line))
    elif after < len(segments) and (hit.line, after) not in page.label_segs:
        candidates.append((segments[after].text, hit.line))
    elif (
        hit.line + 1 < len(page.lines)
        and hit.line + 1 not in page.label_lines
        and page.lines[hit.line + 1].segments
    ):
        candidates.append((page.lines[hit.line + 1].segments[0].text, hit.line + 1))
    for candidate, line in candidates:
        value = _validate(hit.field, candidate)
        if value is not None:
            return value, _continues(page, hit.field, line, candidate)
    return None, False


def _continues(page: _Page, field_name: str, line: int, candidate: str) -> bool:
    """A number or key ending its line, with a bare letters-and-digits line right below:
    the value was wrapped, and what we have is only its beginning."""
    if field_name not in ("guarantee_number", "auth_key") or line + 1 >= len(page.lines):
        return False
    if " " in candidate.strip() or line + 1 in page.label_lines:
        return False
    below = page.lines[line + 1]
    return len(below.segments) == 1 and bool(_ALNUM_WORD.fullmatch(below.segments[0].text))


def _table_rows(page: _Page, li: int) -> list[tuple[str, str | None, bool]]:
    """Rows under a header row of labels, each read cell by cell under its label."""
    header = [h for h in page.hits if h.line == li]
    out: list[tuple[str, str | None, bool]] = []
    for row in range(li + 1, len(page.lines)):
        if row in page.label_lines:
            break
        cells = page.lines[row].segments
        found = False
        for hit in header:
            label = page.lines[li].segments[hit.seg]
            cell = next((c for c in cells if c.x0 < label.x1 and c.x1 > label.x0), None)
            if cell is not None:
                found = True
                out.append((hit.field, _validate(hit.field, cell.text), False))
        if not found:
            break
    return out


def read_fields(lines: list[Line], layout: Layout, origin: str) -> PageReading:
    """All notices on one page or body; `incomplete` if a number or key stood alone."""
    page = _Page(lines, layout)
    records: list[Record] = []
    current = Record()
    doubtful = False
    for field_name, value, continued in _observations(page):
        doubtful |= continued
        if value is None:
            continue
        if field_name in current.values:
            records.append(current)
            current = Record()
        current.values[field_name] = value
    records.append(current)
    if doubtful or any(r.partial() for r in records):
        partial = [r for r in records if r.partial()]
        lone = () if doubtful or any("auth_key" in r.values for r in partial) else tuple(
            r.values["guarantee_number"] for r in partial)
        return PageReading([], True, lone)
    # Only a notice page names its surety; typed text is the contractor's words.
    surety = _find_surety(lines, layout) if "#page=" in origin else None
    notices = [
        Notice(
            guarantee_number=r.values["guarantee_number"],
            auth_key=r.values["auth_key"],
            kind=r.values.get("kind"),
            project_name=r.values.get("project_name"),
            contractor=r.values.get("contractor"),
            surety=surety,
            origin=origin,
        )
        for r in records
        if r.complete()
    ]
    return PageReading(notices, False)


def _find_surety(lines: list[Line], layout: Layout) -> str | None:
    """The surety named on a line of its own (the notice's signature); else the only one
    the page mentions; None when the page names several."""
    standalone = {fold_spaces(seg.text) for line in lines for seg in line.segments}
    for name in layout.sureties:
        if name in standalone:
            return name
    folded = fold_spaces("".join(line.text for line in lines))
    mentioned = [name for name in layout.sureties if name in folded]
    return mentioned[0] if len(mentioned) == 1 else None

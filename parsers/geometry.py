"""Lines of segments from positioned glyphs: writing direction, lines, words, cells, spacing.

Input is a page's glyphs with their loose (advance) boxes in page space and the frame each is
written in (`parsers.pdfchars`). Output is what `fields` reads: lines in reading order, each
a tuple of segments (runs of text with their extent along the line).

**Orientation.** Glyphs are grouped by frame (baseline angle, mirrored or not), and each
group is read in its own frame: along its baseline, lines from its own top. So a page with
`/Rotate 90` whose content is drawn turned, text drawn with a rotated text matrix and
mirrored text all read as they are displayed or written; the group that stands upright in
the displayed page (after `/Rotate`) comes first, then the others by size.

**Spacing.** Between two glyphs of a line the gap (loose box to loose box) decides: up to a
quarter of the font size they touch, up to 1.2 times it is a word space, beyond that the
line parts into segments (table cells, label and value). Letter spacing (`Tc`, `Tw` with a
space after every character, `TJ` shifts, glyphs placed one by one: 均等割付) is recognised
as a *run*: at least three single glyphs in a row at one regular step — all the same gap, or
all the same distance between centres (within `PITCH_TOLERANCE` of the size) — each glyph
standing alone: a glyph touching a neighbour belongs to an ordinary word, so a key next to a
spaced word is never drawn into the run. Inside a run the glyphs join into one word even
across gaps up to `RUN_MAX_GAP` sizes; a gap clearly wider than the run's pitch ends it, so
two spaced values side by side stay two; a gap geometry cannot decide is marked in doubt
(`gap_kinds`), and no number or key is read across it (docs/reading.md).
"""

from __future__ import annotations

from collections import defaultdict
from math import cos, radians, sin
from statistics import median

from .fields import DOUBT as DOUBT_MARK
from .fields import Line, Segment
from .normalize import normalize_text
from .pdfchars import UPRIGHT, Frame, Glyph

TOUCH = 0.25  # gap / size up to which two glyphs belong to one word
CELL = 1.2  # gap / size beyond which a line parts into segments
PITCH_TOLERANCE = 0.12  # a letter-spaced run's steps may differ by this share of the size
RUNS_APART = 1.5  # two runs this many pitches apart are two words, never in doubt
DOUBT_EXTRA = 0.5  # a lone glyph this much (× size) further than a run's step is in doubt
RUN_MAX_GAP = 3.0  # the widest gap / size a letter-spaced run bridges
RUN_MIN_GLYPHS = 3
RUN_WINDOW = 5  # gaps whose median sets a run's pitch
COLLIDE = 0.15  # glyph boxes overlapping by more than this (× size) collide
DUPLICATE = 1.0  # points: the same glyph drawn again this close is fake bold, read once

#: (text, along0, along1, across0, across1): a glyph in its frame's coordinates.
_Box = tuple[str, float, float, float, float]


def page_lines(glyphs: list[Glyph], rotation: int = 0) -> list[Line]:
    """The page's lines in reading order, frame by frame."""
    groups: dict[Frame, list[Glyph]] = defaultdict(list)
    for glyph in glyphs:
        groups[glyph[5]].append(glyph)

    def order(frame: Frame) -> tuple[bool, int]:
        upright = (frame[0] - rotation) % 360 == 0 and not frame[1]
        return (not upright, -len(groups[frame]))

    lines: list[Line] = []
    for frame in sorted(groups, key=order):
        if lines:
            # A blank line between directions: a value is never read "below" its label from
            # text written another way (a sideways stamp under the last label of the page).
            lines.append(Line(()))
        lines.extend(_frame_lines(_in_frame(groups[frame], frame)))
    return lines


def _in_frame(glyphs: list[Glyph], frame: Frame) -> list[_Box]:
    if frame == UPRIGHT:
        return [(g[0], g[1], g[3], g[2], g[4]) for g in glyphs]
    angle, mirrored = frame
    ux, uy = cos(radians(angle)), sin(radians(angle))
    # "Up" is the baseline turned a quarter to the left; a mirrored frame's up is the other way.
    vx, vy = (uy, -ux) if mirrored else (-uy, ux)
    out = []
    for text, x0, y0, x1, y1, _frame in glyphs:
        along = (x0 * ux + y0 * uy, x1 * ux + y0 * uy, x0 * ux + y1 * uy, x1 * ux + y1 * uy)
        across = (x0 * vx + y0 * vy, x1 * vx + y0 * vy, x0 * vx + y1 * vy, x1 * vx + y1 * vy)
        out.append((text, min(along), max(along), min(across), max(across)))
    return out


def _frame_lines(boxes: list[_Box]) -> list[Line]:
    """Cluster glyphs into lines by the middle of their height, top line first."""
    boxes.sort(key=lambda b: -(b[3] + b[4]))
    lines: list[Line] = []
    current: list[_Box] = []
    middle = height = 0.0
    for box in boxes:
        mid, h = (box[3] + box[4]) / 2, box[4] - box[3]
        if current and abs(middle - mid) <= 0.35 * max(height, h):
            current.append(box)
            continue
        if current:
            _add_line(lines, current)
        current, middle, height = [box], mid, h
    if current:
        _add_line(lines, current)
    return lines


def _add_line(lines: list[Line], boxes: list[_Box]) -> None:
    boxes.sort(key=lambda b: b[1])
    kept: list[_Box] = []
    for box in boxes:
        if kept and (_same(kept[-1], box) or len(kept) > 1 and _same(kept[-2], box)):
            continue  # fake bold: the same glyph drawn twice, a fraction of a point apart
        kept.append(box)
    segments = line_segments(kept)
    if segments:
        lines.append(Line(tuple(segments)))


def _same(a: _Box, b: _Box) -> bool:
    return a[0] == b[0] and abs(a[1] - b[1]) <= DUPLICATE and abs(a[3] - b[3]) <= DUPLICATE


def _best_run(
    gaps: list[float], steps: list[float], i: int, tolerance: float
) -> tuple[bool, int, float, float]:
    """(by gap?, last gap index, pitch gap, pitch step) of the longer regular run from `i`;
    the pitch is the median of the next `RUN_WINDOW` gaps or steps."""
    gap, step = median(gaps[i : i + RUN_WINDOW]), median(steps[i : i + RUN_WINDOW])
    by_gap, by_step = _reach(gaps, i, gap, tolerance), _reach(steps, i, step, tolerance)
    return (True, by_gap, gap, step) if by_gap >= by_step else (False, by_step, gap, step)


def _reach(values: list[float], i: int, pitch: float, tolerance: float) -> int:
    """The last index from `i` on whose values all stay within `tolerance` of `pitch`
    (`i - 1` when the first one does not)."""
    j = i - 1
    while j + 1 < len(values) and abs(values[j + 1] - pitch) <= tolerance:
        j += 1
    return j


def _alnum(text: str) -> bool:
    return text.isascii() and text.isalnum() or "０" <= text <= "ｚ" and text.isalnum()


PLAIN, RUN, DOUBT, EDGE = 0, 1, 2, 3  # what a gap between two glyphs of a line is


def gap_kinds(boxes: list[_Box], size: float) -> list[int]:
    """For each gap between neighbouring glyphs: inside a letter-spaced run (`RUN`), the
    edge of one, clearly wider than its pitch (`EDGE`: a spaced value fills its cell, so what
    stands beside it is the next cell), a doubtful edge (`DOUBT`), or an ordinary gap
    (`PLAIN`).

    A run's glyphs follow each other at one regular step: the same gap (`Tc`, `Tw`, `TJ`
    spacing) or the same distance between glyph centres (glyphs placed one by one in equal
    cells, whose gaps then vary with the glyph widths). A lone letter or digit beside a run
    of letters and digits, only a little further than the run's step, may be the run's own
    last (or first) glyph or a neighbouring word, and two runs of letters and digits meeting
    at a step only a little off both may be one value or two: such a gap is `DOUBT`, and a
    value across it is never read (`fields.DOUBT`), since a key or number a few characters
    short or long would be a wrong notice."""
    n = len(boxes)
    gaps = [boxes[i + 1][1] - boxes[i][2] for i in range(n - 1)]
    steps = [(boxes[i + 1][1] + boxes[i + 1][2] - boxes[i][1] - boxes[i][2]) / 2
             for i in range(n - 1)]
    kinds = [PLAIN] * len(gaps)
    touch, widest, tolerance = TOUCH * size, RUN_MAX_GAP * size, PITCH_TOLERANCE * size
    collide = COLLIDE * size
    runs: list[tuple[int, int, float, float]] = []  # first gap, last gap, pitch gap and step
    i = 0
    while i < len(gaps):
        gap = gaps[i]
        # A run starts at a glyph standing alone: not touching its left neighbour.
        if gap <= touch or gap > widest or (i > 0 and gaps[i - 1] <= touch):
            i += 1
            continue
        # One kind of regularity per run: equal gaps (Tc, Tw, TJ) or equal steps (glyphs one
        # by one in equal cells) — whichever carries further, never whichever of the two
        # happens to match a glyph; and from the next glyph if that carries further still
        # (a colon before a value placed glyph by glyph).
        by_gap, j, gap, step = _best_run(gaps, steps, i, tolerance)
        if j < i or i + 1 < len(gaps) and _best_run(gaps, steps, i + 1, tolerance)[1] > j:
            i += 1
            continue

        def fits(k: int, by_gap: bool = by_gap, gap: float = gap, step: float = step) -> bool:
            if by_gap:
                return abs(gaps[k] - gap) <= tolerance
            return abs(steps[k] - step) <= tolerance

        # The last glyph touching a letters-and-digits neighbour on its right starts a word
        # (a key after a spaced word): it is not part of the run.
        end = j + 1  # index of the run's last glyph
        cut = (end < n - 1 and -collide <= gaps[end] <= touch and _alnum(boxes[end][0])
               and _alnum(boxes[end + 1][0]) and abs(steps[end] - step) > tolerance)
        if cut:  # (unless the glyphs go on at the run's step: cells of one value, one narrow)
            j -= 1
        # A glyph before the run at the run's own pitch belongs to it, though it seemed to
        # touch its neighbour (a pitch just above `TOUCH`, glyph boxes a little uneven).
        start = i
        while i > 0 and kinds[i - 1] == PLAIN and gaps[i - 1] > -collide and fits(i - 1) and (
            i < 2 or kinds[i - 2] != RUN  # not the last glyph of the run before
        ):
            i -= 1
        if i < start and i > 0 and gaps[i - 1] <= touch:
            i += 1  # ... unless it touches a word on its left: it ends that word
        if j - i + 2 >= RUN_MIN_GLYPHS:
            kinds[i : j + 1] = [RUN] * (j + 1 - i)
            runs.append((i, j, gap, step))
            if cut:  # the word after the run stands at the run's own pitch: whose glyph?
                kinds[j + 1] = DOUBT
            i = j + 2  # the run's last glyph cannot start the next run
        else:
            i += 1
    doubt = DOUBT_EXTRA * size

    def lone(g: int) -> bool:  # glyph g belongs to no run and touches no other glyph
        left = g == 0 or (gaps[g - 1] > touch and kinds[g - 1] != RUN)
        right = g == n - 1 or (gaps[g] > touch and kinds[g] != RUN)
        return left and right and _alnum(boxes[g][0])

    for k, gap in enumerate(gaps):  # letters or digits drawn into each other: two values?
        if gap < -collide and _alnum(boxes[k][0]) and _alnum(boxes[k + 1][0]):
            kinds[k] = DOUBT

    def regular(k: int, other: int) -> bool:
        return 0 <= other < len(gaps) and kinds[other] == PLAIN and abs(
            steps[other] - steps[k]) <= tolerance

    for k in range(len(gaps)):  # a word space at the very step of its neighbours?
        if kinds[k] == PLAIN and touch < gaps[k] <= CELL * size and _alnum(boxes[k][0]) \
                and _alnum(boxes[k + 1][0]) and (
                    regular(k, k - 1) and (regular(k, k + 1) or regular(k, k - 2))
                    or regular(k, k + 1) and regular(k, k + 2)):
            kinds[k] = DOUBT  # glyphs at one regular step, one gap a little wide: split or not?
    following = {first - 1: (gap, step) for first, _last, gap, step in runs}
    for first, last, gap, step in runs:
        for edge, inner, outer in ((last + 1, last + 1, last + 2), (first - 1, first, first - 1)):
            if not (0 <= edge < len(gaps) and kinds[edge] == PLAIN and gaps[edge] > touch):
                continue
            wider = min(gaps[edge] - gap, steps[edge] - step)
            if wider > tolerance:
                kinds[edge] = EDGE  # else a space: no cell boundary at the run's own pitch
            if not (_alnum(boxes[inner][0]) and _alnum(boxes[outer][0])):
                continue
            near = wider < doubt
            # Two runs meeting (seen from the first one's end): one value broken by an odd step?
            nxt = following.get(edge) if edge == last + 1 else None
            if nxt is not None:  # ... only while the gap is under 1.5 pitches of either run
                near = near and min(gaps[edge] - nxt[0], steps[edge] - nxt[1]) < doubt and (
                    gaps[edge] < RUNS_APART * max(gap, nxt[0]))
            if near and (nxt is not None or lone(outer)):
                kinds[edge] = DOUBT
    return kinds


def line_segments(boxes: list[_Box]) -> list[Segment]:
    """One line's glyphs (sorted along the line) as segments, with word spaces put back."""
    if not boxes:
        return []
    size = median([b[4] - b[3] for b in boxes]) or 10.0
    touch, collide = TOUCH * size, -COLLIDE * size
    if all(collide <= boxes[i][1] - boxes[i - 1][2] <= touch for i in range(1, len(boxes))):
        # Every glyph touches the next (prose, a name): one word, no geometry to weigh.
        text = normalize_text("".join(b[0] for b in boxes)).strip()
        return [Segment(text, boxes[0][1], boxes[-1][2])] if text else []
    kinds = gap_kinds(boxes, size) if len(boxes) >= RUN_MIN_GLYPHS else [PLAIN] * (len(boxes) - 1)
    groups: list[list[str]] = [[boxes[0][0]]]
    starts, ends = [boxes[0][1]], [boxes[0][2]]
    for i in range(1, len(boxes)):
        box = boxes[i]
        gap = box[1] - boxes[i - 1][2]
        kind = kinds[i - 1]
        if kind == RUN:
            groups[-1].append(box[0])
        elif kind == DOUBT:
            groups[-1].append(DOUBT_MARK + box[0])
        elif gap > CELL * size or kind == EDGE:
            if gap <= CELL * size and DOUBT in kinds[max(i - 2, 0) : i + 1]:
                groups[-1].append(DOUBT_MARK)  # a doubtful glyph beside: both sides in doubt
                groups.append([DOUBT_MARK, box[0]])
            else:
                groups.append([box[0]])
            starts.append(box[1])
            ends.append(box[2])
            continue
        elif gap > TOUCH * size:
            groups[-1].append(" ")
            groups[-1].append(box[0])
        else:
            groups[-1].append(box[0])
        ends[-1] = box[2]
    segments = []
    for chars, x0, x1 in zip(groups, starts, ends, strict=True):
        text = normalize_text("".join(chars)).strip()
        if text:
            segments.append(Segment(text, x0, x1))
    return segments

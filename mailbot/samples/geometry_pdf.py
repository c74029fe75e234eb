"""How producers turn and space a notice's text: page rotation, text matrices, letter spacing.

`render_notice_pdf(..., orientation=…, spacing=…)` draws the same notice as always; these
options change only how the text layer is built, the way contractors' and sureties' tools do:

Orientations (the page is always *displayed* or *written* as a normal notice):

- ``rotate90`` / ``rotate180`` / ``rotate270``: the page carries ``/Rotate`` and its content
  is drawn turned the other way, so a viewer shows it upright (scanner and "landscape" tools);
- ``rotate90_inherited``: the same, with ``/Rotate`` on the page tree's node, inherited;
- ``text_matrix90``: no ``/Rotate``; every text object's matrix turns it a quarter (text
  running upwards on a landscape page, as a drawing tool puts a sideways note);
- ``flipped_ctm``: a top-left-origin producer (browsers, report engines): the CTM flips the
  page and every text matrix flips back;
- ``mirrored``: text matrices mirrored left to right (glyphs advance leftwards).

Spacing of the letter-spaced text (labels with ``letter_spaced``, values with ``value_space``):

- ``tc``: character spacing (``Tc``);
- ``tw``: a space after every character, widened by word spacing (``Tw``; TrueType only: Tw
  applies to the single-byte space);
- ``tj``: one ``TJ`` array shifting every glyph;
- ``positioned``: every glyph placed on its own at a regular pitch, centred in equal cells
  (its gaps then differ with the glyph widths, only the pitch is regular).
"""

from __future__ import annotations

import re
from typing import Literal

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.pdfgen.textobject import PDFTextObject

Orientation = Literal[
    "upright", "rotate90", "rotate180", "rotate270", "rotate90_inherited", "text_matrix90",
    "flipped_ctm", "mirrored",
]
Spacing = Literal["tc", "tw", "tj", "positioned"]
ORIENTATIONS: tuple[str, ...] = Orientation.__args__  # type: ignore[attr-defined]
SPACINGS: tuple[str, ...] = Spacing.__args__  # type: ignore[attr-defined]

PORTRAIT = A4


def page_size(orientation: str) -> tuple[float, float]:
    """The MediaBox size: landscape where the portrait notice is drawn turned a quarter."""
    w, h = PORTRAIT
    if orientation in ("rotate90", "rotate270", "rotate90_inherited", "text_matrix90"):
        return h, w
    return w, h


def begin_page(canvas: Canvas, orientation: str) -> None:
    """Page rotation and the CTM that maps the portrait drawing onto the page."""
    w, h = PORTRAIT
    if orientation in ("rotate90", "rotate90_inherited"):
        canvas.setPageRotation(90)
        canvas.translate(h, 0)
        canvas.rotate(90)
    elif orientation == "rotate180":
        canvas.setPageRotation(180)
        canvas.translate(w, h)
        canvas.rotate(180)
    elif orientation == "rotate270":
        canvas.setPageRotation(270)
        canvas.translate(0, w)
        canvas.rotate(270)
    elif orientation == "flipped_ctm":
        canvas.transform(1, 0, 0, -1, 0, h)


def text_matrix(orientation: str, x: float, y: float) -> tuple[float, ...]:
    """The text matrix that draws a portrait-drawing point (x, y) the orientation's way."""
    w, h = PORTRAIT
    if orientation == "text_matrix90":
        return (0, 1, -1, 0, h - y, x)
    if orientation == "flipped_ctm":
        return (1, 0, 0, -1, x, h - y)
    if orientation == "mirrored":
        return (-1, 0, 0, 1, w - x, y)
    return (1, 0, 0, 1, x, y)


class Pen:
    """Draws aligned text on one canvas, once per offset (the fake-bold double strike);
    `_line` draws one strike."""

    def __init__(self, canvas: Canvas, font: str, *, fake_bold: bool) -> None:
        self.canvas = canvas
        self.font = font
        self.offsets = (0.0, 0.3) if fake_bold else (0.0,)

    def width(self, text: str, size: float, char_space: float = 0.0) -> float:
        return pdfmetrics.stringWidth(text, self.font, size) + char_space * len(text)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float = 10.5,
        *,
        char_space: float = 0.0,
        align: str = "left",
    ) -> None:
        if align == "center":
            x -= self.width(text, size, char_space) / 2
        elif align == "right":
            x -= self.width(text, size, char_space)
        for dx in self.offsets:
            self._line(x + dx, y, text, size, char_space)

    def _line(self, x: float, y: float, text: str, size: float, char_space: float) -> None:
        raise NotImplementedError


class GeometryPen(Pen):
    """Draws text like `notice_pdf._Pen`, realising letter spacing and orientation."""

    def __init__(
        self, canvas: Canvas, font: str, *, fake_bold: bool, orientation: str, spacing: str
    ) -> None:
        super().__init__(canvas, font, fake_bold=fake_bold)
        self.orientation = orientation
        self.spacing = spacing

    def width(self, text: str, size: float, char_space: float = 0.0) -> float:
        if char_space and self.spacing == "positioned":
            return self._pitch(text, size, char_space) * len(text)
        return pdfmetrics.stringWidth(text, self.font, size) + char_space * len(text)

    def _pitch(self, text: str, size: float, char_space: float) -> float:
        return max(pdfmetrics.stringWidth(ch, self.font, size) for ch in text) + char_space

    def _line(self, x: float, y: float, text: str, size: float, char_space: float) -> None:
        if char_space and self.spacing == "positioned":
            pitch = self._pitch(text, size, char_space)
            for i, ch in enumerate(text):
                w = pdfmetrics.stringWidth(ch, self.font, size)
                self._draw(x + i * pitch + (pitch - w) / 2, y, ch, size, 0.0, 0.0)
        elif char_space and self.spacing == "tw":
            space = pdfmetrics.stringWidth(" ", self.font, size)
            self._draw(x, y, " ".join(text), size, 0.0, char_space - space)
        elif char_space and self.spacing == "tj":
            self._draw_tj(x, y, text, size, char_space)
        else:
            self._draw(x, y, text, size, char_space, 0.0)

    def _begin(self, x: float, y: float, size: float) -> PDFTextObject:
        obj = self.canvas.beginText()
        obj.setTextTransform(*text_matrix(self.orientation, x, y))
        obj.setFont(self.font, size)
        return obj

    def _draw(self, x: float, y: float, text: str, size: float, tc: float, tw: float) -> None:
        obj = self._begin(x, y, size)
        obj.setCharSpace(tc)  # Tc and Tw persist in the graphics state: always set them
        obj.setWordSpace(tw)
        obj.textOut(text)
        self.canvas.drawText(obj)

    def _draw_tj(self, x: float, y: float, text: str, size: float, char_space: float) -> None:
        obj = self._begin(x, y, size)
        obj.setCharSpace(0)
        obj.setWordSpace(0)
        shift = f" {-char_space * 1000 / size:.1f} "
        fmt = obj._formatText  # type: ignore[attr-defined]  # reportlab has no public TJ
        operands = [_OPERAND.findall(fmt(ch))[-1] for ch in text]
        obj._code.append(f"[{shift.join(operands)}] TJ")  # type: ignore[attr-defined]
        self.canvas.drawText(obj)


_OPERAND = re.compile(r"(\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f]*>)\s*Tj")


def inherit_rotation(data: bytes) -> bytes:
    """Move every page's ``/Rotate`` onto the page tree node (all pages must share it)."""
    rotations = set(re.findall(rb"/Rotate (\d+)", data))
    if len(rotations) != 1:
        raise ValueError("inherit_rotation needs pages with one and the same /Rotate")
    (value,) = rotations
    data = re.sub(rb"/Rotate \d+ ?", b"", data)
    data = data.replace(b"/Type /Pages", b"/Rotate " + value + b" /Type /Pages", 1)
    return rebuild_xref(data)


def rebuild_xref(data: bytes) -> bytes:
    """Rewrite a classic xref table after objects moved (reportlab output, no object streams)."""
    offsets = {int(m.group(1)): m.start(1) for m in re.finditer(rb"(?m)^(\d+) 0 obj", data)}
    start = data.rindex(b"\nxref\n") + 1
    trailer = data.index(b"trailer", start)
    size = max(offsets) + 1
    rows = [b"0000000000 65535 f \n"] + [
        b"%010d 00000 n \n" % offsets[n] if n in offsets else b"0000000000 65535 f \n"
        for n in range(1, size)
    ]
    table = b"xref\n0 %d\n" % size + b"".join(rows)
    tail = data[trailer:]
    tail = re.sub(rb"startxref\s+\d+", b"startxref\n%d" % start, tail)
    return data[:start] + table + tail

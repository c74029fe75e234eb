"""Render fictional 電子保証 notice PDFs (「認証キー」のお知らせ) in the layouts the sureties use.

The pages imitate the real notices closely enough to exercise a reader: the EJCS prose-then-記
layout with letter-spaced ``label ： value`` lines, the WJCS two-column table and a generic
header-row table. Options reproduce what real producers do to the text layer (letter spacing
by character spacing, fake bold, Kangxi radicals, full-width values, encryption).

All output is deterministic: reportlab runs with ``invariant=1`` and no random input.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reportlab.lib.pagesizes import A4
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from mailbot.samples import geometry_pdf

Layout = Literal["ejcs", "wjcs", "generic"]
FontKind = Literal["cid", "ttf"]

#: Debian package fonts-ipaexfont-gothic; read at call time so tests can point it elsewhere.
IPAEX_FONT_PATH = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
CID_FONT_NAME = "HeiseiKakuGo-W5"
TTF_FONT_NAME = "MailbotIPAexGothic"

PAGE_W, PAGE_H = A4
FAKE_BOLD_OFFSET = 0.3

# Look-alike code points a producer may emit (docs/reading.md). Kangxi radicals fold under NFKC,
# the CJK Radicals Supplement does not.
KANGXI_LABEL = {"工": "\u2f2f"}  # ⼯ KANGXI RADICAL WORK
RADICAL_SUPPLEMENT = {"長": "\u2ed1", "西": "\u2ec4"}  # ⻑ ⻄


class FontNotFoundError(FileNotFoundError):
    """The embedded TrueType font needed for ``font="ttf"`` is not installed."""


@dataclass(frozen=True)
class NoticeFields:
    """The values printed on one notice page (logical values, before any display trick)."""

    guarantee_number: str
    auth_key: str
    kind: str
    project_name: str
    contractor: str
    surety: str
    issuer: str | None = None
    amount: int | None = None


def font_name(font: FontKind) -> str:
    """Register (once) and return the reportlab font name for ``font``."""
    if font == "cid":
        if CID_FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT_NAME))
        return CID_FONT_NAME
    if font == "ttf":
        if TTF_FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            path = Path(IPAEX_FONT_PATH)
            if not path.is_file():
                raise FontNotFoundError(
                    f"the IPAex Gothic font is missing at {path} (install the Debian package "
                    "fonts-ipaexfont-gothic, or use font='cid')"
                )
            pdfmetrics.registerFont(TTFont(TTF_FONT_NAME, str(path)))
        return TTF_FONT_NAME
    raise ValueError(f"unknown font kind {font!r} (expected 'cid' or 'ttf')")


def to_fullwidth(text: str) -> str:
    """ASCII letters/digits to full-width forms and '-' to U+FF0D FULLWIDTH HYPHEN-MINUS."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


class _Pen(geometry_pdf.Pen):
    """Draws text on one canvas with the notice's font and the producer quirks."""

    def __init__(self, canvas: Canvas, font: str, *, fake_bold: bool) -> None:
        super().__init__(canvas, font, fake_bold=fake_bold)
        self.offsets = (0.0, FAKE_BOLD_OFFSET) if fake_bold else (0.0,)

    def _line(self, x: float, y: float, text: str, size: float, char_space: float) -> None:
        obj = self.canvas.beginText(x, y)
        obj.setFont(self.font, size)
        obj.setCharSpace(char_space)  # Tc persists in the graphics state: always set it
        obj.textOut(text)
        self.canvas.drawText(obj)


@dataclass
class _Style:
    """Display options shared by the layouts."""

    letter_spaced: bool
    kangxi: bool
    fullwidth_values: bool
    value_space: float = 0.0  # character spacing of numbers and keys (均等割付 values)
    notes: str = ""  # "plain" / "spaced": a remark on the number's and key's line, after them

    def label(self, spaced: str) -> tuple[str, float]:
        """A label given with its real spaces (``工 事 名``): the text to draw and char space."""
        text = spaced
        if self.kangxi:
            text = "".join(KANGXI_LABEL.get(ch, ch) for ch in text)
        if self.letter_spaced and " " in text:
            return text.replace(" ", ""), 6.0
        return text, 0.0

    def plain_label(self, text: str) -> str:
        return "".join(KANGXI_LABEL.get(ch, ch) for ch in text) if self.kangxi else text

    def code(self, value: str) -> str:
        return to_fullwidth(value) if self.fullwidth_values else value

    def project(self, value: str) -> str:
        if not self.kangxi:
            return value
        return "".join(RADICAL_SUPPLEMENT.get(ch, ch) for ch in value)


def _draw_ejcs(pen: geometry_pdf.Pen, f: NoticeFields, st: _Style) -> None:
    """東日本建設業保証 style: prose with the label words, 記, letter-spaced label lines."""
    pen.text(PAGE_W - 70, 790, "令和8年4月1日", 10.5, align="right")
    pen.text(PAGE_W / 2, 745, "電子保証にかかる「認証キー」のお知らせ", 15, align="center")
    _lines(pen, 705.0, [
        "電子保証を「保証確認サービス（D-Sure）」に掲載しましたので、お知らせします。",
        "つきましては、お客様にて下記内容をご確認いただき、次のいずれかの方法でPDF",
        "ファイルを発注者様にご提出ください。",
        "　①電子契約システムへのアップロード　又は　②電子メールに添付して送信",
        "電子保証のご利用にあたっては、発注者への「保証契約番号」と「認証キー」のご提出",
        "をもって、前払金請求手続（前払金保証）、又は請負契約締結手続（契約保証）が",
        "完了いたします。",
        "ご不明な点がございましたら、当社の営業部・支店までお問い合わせください。",
    ])
    pen.text(PAGE_W / 2, 548, "記", 11, align="center")
    rows: list[tuple[str, str]] = [
        ("工 事 名", st.project(f.project_name)),
        ("受 注 者 名", f.contractor),
        ("商品（保証区分）", f.kind),
        ("保証契約番号", st.code(f.guarantee_number)),
        ("認 証 キー", st.code(f.auth_key)),
    ]
    y = 510.0
    for spaced, value in rows:
        label, cs = st.label(spaced)
        pen.text(95, y, label, 11, char_space=cs)
        pen.text(210, y, "：", 11)
        code = spaced in ("保証契約番号", "認 証 キー")
        pen.text(226, y, value, 11, char_space=st.value_space if code else 0.0)
        if code and st.notes:
            gap = 4.0 if st.notes == "spaced" else 5.5  # spaced: the gap equals the note's pitch
            _note(pen, 226 + pen.width(value, 11, st.value_space) + gap, y, spaced, st)
        if spaced == "受 注 者 名":
            y -= 15
            pen.text(95, y, "（JVの場合は代表者）", 8.5)
        y -= 30
    pen.text(70, 330, "【発注者様へのお願い】", 10.5)
    pen.text(70, 313, "「保証確認サービス（D-Sure）」にログインし、上記の「保証契約番号」と", 10.5)
    pen.text(70, 296, "「認証キー」をもって電子保証を閲覧ください。", 10.5)
    pen.text(PAGE_W - 70, 230, f.surety, 12, align="right")


_NOTES = {"保証契約番号": "電子保証", "認 証 キー": "大文字小文字を区別"}


def _note(pen: geometry_pdf.Pen, x: float, y: float, row: str, st: _Style) -> None:
    """A remark right after a value on its line: normal text, or letter-spaced words."""
    if st.notes == "spaced":  # single letters at a regular pitch, right after the value
        pen.text(x, y, "ABC", 11, char_space=4.0)
    else:
        pen.text(x, y, f"（{_NOTES[row]}）", 11)


def _lines(pen: geometry_pdf.Pen, y: float, lines: list[str]) -> None:
    """A paragraph of prose lines from the left margin, downwards from `y`."""
    for line in lines:
        pen.text(70, y, line, 10.5)
        y -= 17


def _cell(pen: geometry_pdf.Pen, x: float, y: float, w: float, h: float, *, shade: bool = False) -> None:
    c = pen.canvas
    if shade:
        c.setFillGray(0.9)
        c.rect(x, y, w, h, stroke=1, fill=1)
        c.setFillGray(0)
    else:
        c.rect(x, y, w, h, stroke=1, fill=0)


def _draw_wjcs(pen: geometry_pdf.Pen, f: NoticeFields, st: _Style) -> None:
    """西日本建設業保証 style: addressee, prose, a label | value table drawn with rectangles."""
    pen.text(PAGE_W - 70, 790, "令和8年4月1日", 10.5, align="right")
    pen.text(70, 765, f"{f.contractor}　御中", 11)
    pen.text(PAGE_W / 2, 720, "『電子証書閲覧用「認証キー」等のお知らせ』", 15, align="center")
    _lines(pen, 680.0, [
        "このたびは弊社の電子保証をご利用いただき、誠にありがとうございます。",
        "下記の工事にかかる電子証書を発行いたしましたので、閲覧に必要な「保証契約番号」",
        "及び「認証キー」をお知らせいたします。本書を発注者様へご提出ください。",
        "発注者様は「工事名」「請負者名」「保証の種類」をご確認のうえ、電子証書を",
        "ご閲覧ください。",
    ])
    rows: list[tuple[str, str]] = [(st.plain_label("工事名"), st.project(f.project_name))]
    if f.issuer:
        rows.append(("発注者名", f.issuer))
    rows += [
        ("請負者名", f.contractor),
        ("保証の種類", f.kind),
        ("保証契約番号", st.code(f.guarantee_number)),
        ("認証キー", st.code(f.auth_key)),
    ]
    if f.amount is not None:
        rows.append(("保証金額", f"{f.amount:,}円"))
    x0, label_w, value_w, row_h = 70.0, 120.0, PAGE_W - 140 - 120, 30.0
    y = 560.0
    for label, value in rows:
        _cell(pen, x0, y, label_w, row_h, shade=True)
        _cell(pen, x0 + label_w, y, value_w, row_h)
        pen.text(x0 + 10, y + 10, label, 11)
        code = label in ("保証契約番号", "認証キー")
        pen.text(x0 + label_w + 12, y + 10, value, 11, char_space=st.value_space if code else 0)
        y -= row_h
    y -= 20
    pen.text(70, y, "※「認証キー」は英大文字・小文字を区別します。", 9.5)
    pen.text(70, y - 15, "※本書は再発行いたしませんので大切に保管してください。", 9.5)
    pen.text(PAGE_W - 70, 200, f.surety, 12, align="right")


def _draw_generic(pen: geometry_pdf.Pen, f: NoticeFields, st: _Style) -> None:
    """A plain form: label/value lines without colon, then a header-row table."""
    pen.text(PAGE_W / 2, 760, "認証キー等のお知らせ", 16, align="center")
    pen.text(70, 715, "下記の電子保証について、保証契約番号及び認証キーをお知らせします。", 10.5)
    pen.text(70, 698, "発注者への提出書類としてご利用ください。", 10.5)
    pen.text(80, 650, st.plain_label("工事名"), 11)
    pen.text(210, 650, st.project(f.project_name), 11)
    pen.text(80, 620, "受注者名", 11)
    pen.text(210, 620, f.contractor, 11)
    heads = ["保証契約番号", "認証キー", "保証区分"]
    values = [st.code(f.guarantee_number), st.code(f.auth_key), f.kind]
    x0, col_w, row_h, y = 70.0, (PAGE_W - 140) / 3, 28.0, 560.0
    for i, (head, value) in enumerate(zip(heads, values, strict=True)):
        x = x0 + i * col_w
        _cell(pen, x, y, col_w, row_h, shade=True)
        _cell(pen, x, y - row_h, col_w, row_h)
        pen.text(x + col_w / 2, y + 9, head, 11, align="center")
        cs = st.value_space if i < 2 else 0.0
        pen.text(x + col_w / 2, y - row_h + 9, value, 11, char_space=cs, align="center")
    pen.text(PAGE_W - 70, 230, f.surety, 12, align="right")


_LAYOUTS = {"ejcs": _draw_ejcs, "wjcs": _draw_wjcs, "generic": _draw_generic}


def render_notice_pdf(
    pages: list[NoticeFields] | NoticeFields,
    *,
    layout: Layout = "ejcs",
    font: FontKind = "cid",
    letter_spaced: bool = False,
    fake_bold: bool = False,
    kangxi: bool = False,
    fullwidth_values: bool = False,
    encrypt_user_password: str | None = None,
    encrypt_owner_password: str | None = None,
    page_compression: bool = True,
    orientation: str = "upright",
    spacing: str = "tc",
    value_space: float = 0.0,
    notes: str = "",
) -> bytes:
    """Render one notice per page and return the PDF bytes.

    ``encrypt_user_password`` makes a PDF that cannot be opened without that password;
    ``encrypt_owner_password`` alone makes one with an empty user password (opens anywhere).
    ``orientation`` and ``spacing`` say how the text layer is built (`geometry_pdf`);
    ``value_space`` letter-spaces numbers and keys, ``notes`` puts a remark after them.
    """
    if orientation not in geometry_pdf.ORIENTATIONS or spacing not in geometry_pdf.SPACINGS:
        raise ValueError(f"unknown orientation {orientation!r} or spacing {spacing!r}")
    if layout not in _LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (expected one of {sorted(_LAYOUTS)})")
    fields_list = [pages] if isinstance(pages, NoticeFields) else list(pages)
    if not fields_list:
        raise ValueError("render_notice_pdf needs at least one NoticeFields")
    encrypt: StandardEncryption | None = None
    if encrypt_user_password is not None or encrypt_owner_password is not None:
        encrypt = StandardEncryption(
            encrypt_user_password or "",
            ownerPassword=encrypt_owner_password or encrypt_user_password,
            strength=128,
        )
    buf = io.BytesIO()
    canvas = Canvas(
        buf,
        pagesize=geometry_pdf.page_size(orientation),
        invariant=1,
        encrypt=encrypt,
        pageCompression=int(page_compression),
    )
    canvas.setTitle("電子保証 認証キーのお知らせ")
    canvas.setAuthor("mailbot samples")
    plain = orientation == "upright" and spacing == "tc"
    pen: geometry_pdf.Pen = (
        _Pen(canvas, font_name(font), fake_bold=fake_bold)
        if plain
        else geometry_pdf.GeometryPen(
            canvas, font_name(font), fake_bold=fake_bold, orientation=orientation,
            spacing=spacing,
        )
    )
    style = _Style(
        letter_spaced=letter_spaced,
        kangxi=kangxi,
        fullwidth_values=fullwidth_values,
        value_space=value_space,
        notes=notes,
    )
    for fields in fields_list:
        geometry_pdf.begin_page(canvas, orientation)
        canvas.setLineWidth(0.6)
        _LAYOUTS[layout](pen, fields, style)
        canvas.showPage()
    canvas.save()
    data = buf.getvalue()
    return geometry_pdf.inherit_rotation(data) if orientation == "rotate90_inherited" else data

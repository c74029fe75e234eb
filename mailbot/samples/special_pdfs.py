"""PDFs that are hard or hostile to read: image-only, unmapped glyphs, bombs, slow pages.

Also an ordinary non-notice document, because real submissions carry other papers.
Everything is deterministic; the expensive payloads are cached per process.
"""

from __future__ import annotations

import functools
import io
import zlib

from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from mailbot.samples import notice_pdf
from mailbot.samples.notice_pdf import NoticeFields, font_name, render_notice_pdf

GIB = 1 << 30
_CHUNK = 1 << 20


def render_image_only_pdf(fields: NoticeFields, rotation: int = 0) -> bytes:
    """The notice as a scanned-looking raster image with no text layer at all.

    ``rotation=90`` is a notice scanned sideways: a landscape page whose image lies on its
    side, with ``/Rotate 90`` so that viewers show it upright."""
    width, height = 827, 1169  # A4 at 100 dpi
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    path = notice_pdf.IPAEX_FONT_PATH
    big: ImageFont.FreeTypeFont | None
    small: ImageFont.FreeTypeFont | None
    try:
        big = ImageFont.truetype(str(path), 26)
        small = ImageFont.truetype(str(path), 17)
    except OSError:
        big = small = None
    lines = [
        "電子保証にかかる「認証キー」のお知らせ",
        "",
        "記",
        f"工 事 名 ： {fields.project_name}",
        f"受 注 者 名 ： {fields.contractor}",
        f"商品（保証区分）： {fields.kind}",
        f"保証契約番号 ： {fields.guarantee_number}",
        f"認 証 キー ： {fields.auth_key}",
        "",
        fields.surety,
    ]
    if big is not None and small is not None:
        draw.text((width // 2, 110), lines[0], font=big, fill=0, anchor="mm")
        y = 260
        for line in lines[2:]:
            draw.text((120, y), line, font=small, fill=0)
            y += 48
    else:  # no font installed: draw bars where the text would be, still an image-only page
        draw.rectangle((180, 95, 650, 125), fill=60)
        for i in range(9):
            draw.rectangle((120, 260 + i * 48, 120 + 200 + (i * 37) % 260, 276 + i * 48), fill=90)
    buf = io.BytesIO()
    if rotation:
        img = img.rotate(rotation, expand=True)  # counter-clockwise; /Rotate turns it back
    size = (A4[1], A4[0]) if rotation in (90, 270) else A4
    canvas = Canvas(buf, pagesize=size, invariant=1)
    if rotation:
        canvas.setPageRotation(rotation)
    canvas.drawImage(ImageReader(img), 0, 0, width=size[0], height=size[1])
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def render_unmapped_glyph_pdf(fields: NoticeFields) -> bytes:
    """A notice whose font has no usable Unicode mapping for pdfminer.

    The CID font is non-embedded and has no /ToUnicode; its CIDSystemInfo is rewritten from
    Adobe-Japan1 to Adobe-Identity, so pdfminer finds no CID→Unicode table and yields
    ``(cid:NNN)``. The /Encoding stays UniJIS-UCS2-H, which pdfium decodes as UCS-2 directly,
    so pypdfium2 still reads the page correctly.
    """
    data = render_notice_pdf(fields, layout="ejcs", font="cid")
    old = b"/Ordering (Japan1) /Registry (Adobe) /Supplement 2"
    new = b"/Ordering(Identity)/Registry(Adobe)/Supplement 0".ljust(len(old))
    if old not in data:
        raise RuntimeError("reportlab's CIDSystemInfo changed: cannot make the unmapped-glyph PDF")
    return data.replace(old, new)  # same length: the xref offsets stay valid


def _pdf_from_objects(objects: list[bytes]) -> bytes:
    """Serialise numbered PDF objects (1..n, object 1 the catalog) with a correct xref."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


@functools.lru_cache(maxsize=2)
def raw_deflate_of_spaces(total: int = GIB, fill: bytes = b" ") -> tuple[bytes, int]:
    """A raw deflate stream of ``total`` bytes of ``fill`` and the CRC-32 of that output.

    One 1 MiB chunk is compressed and ended with a full flush (which resets the window), so
    the compressed chunk can simply be repeated; this takes milliseconds instead of seconds.
    """
    if total % _CHUNK:
        raise ValueError("total must be a multiple of 1 MiB")
    chunk = fill * _CHUNK
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block
    crc = 0
    for _ in range(total // _CHUNK):
        crc = zlib.crc32(chunk, crc)
    return block * (total // _CHUNK) + final, crc


def _zlib_wrap_spaces(total: int) -> bytes:
    """A zlib stream (header, deflate, Adler-32) inflating to ``total`` spaces."""
    raw, _crc = raw_deflate_of_spaces(total)
    a = (1 + 0x20 * total) % 65521
    b = (total + 0x20 * (total * (total + 1) // 2)) % 65521
    return b"\x78\xda" + raw + ((b << 16) | a).to_bytes(4, "big")


@functools.lru_cache(maxsize=1)
def render_decompression_bomb_pdf(inflated: int = GIB) -> bytes:
    """A valid, tiny PDF whose one content stream inflates to ``inflated`` bytes of spaces.

    The stream is FlateDecode applied three times (a single deflate cannot exceed ~1032:1),
    so the file stays well under 2 KB while the decoded content is 1 GiB of white space.
    """
    data = zlib.compress(zlib.compress(_zlib_wrap_spaces(inflated), 9), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>",
        _stream(b"/Filter [/FlateDecode /FlateDecode /FlateDecode]", data),
    ]
    return _pdf_from_objects(objects)


@functools.lru_cache(maxsize=2)
def render_slow_pdf(n_chars: int = 200_000) -> bytes:
    """A one-page PDF with ``n_chars`` separately positioned tiny glyphs.

    pdfplumber builds one object per character; at 200 000 characters a full
    ``extract_text()`` takes about ten seconds on a small machine, while the file stays
    around 1 MB because the content stream compresses well.
    """
    ops = ["BT /F1 2 Tf"]
    cols, rows = 400, 410
    for i in range(n_chars):
        x = 10 + (i % cols) * 1.4
        y = 830 - ((i // cols) % rows) * 2.0
        ops.append(f"1 0 0 1 {x:.1f} {y:.1f} Tm ({chr(65 + i % 26)}) Tj")
    ops.append("ET")
    content = zlib.compress("\n".join(ops).encode("ascii"), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        _stream(b"/Filter /FlateDecode", content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    return _pdf_from_objects(objects)


def render_other_document_pdf(title: str = "請負代金内訳書") -> bytes:
    """An ordinary paper a contractor attaches too: a cost breakdown, no guarantee data."""
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=A4, invariant=1)
    font = font_name("cid")
    width, _height = A4
    canvas.setFont(font, 16)
    canvas.drawCentredString(width / 2, 770, title)
    canvas.setFont(font, 10.5)
    canvas.drawString(70, 730, "工事名　〇〇浄水場△△修繕工事")
    canvas.drawString(70, 712, "受注者　〇〇建設　株式会社")
    rows = [
        ("直接工事費", 18_400_000),
        ("共通仮設費", 1_250_000),
        ("現場管理費", 2_730_000),
        ("一般管理費等", 2_120_000),
        ("消費税相当額", 2_450_000),
    ]
    y = 670
    canvas.setLineWidth(0.6)
    for name, amount in rows:
        canvas.rect(70, y - 6, 455, 22)
        canvas.drawString(80, y, name)
        canvas.drawRightString(515, y, f"{amount:,}円")
        y -= 22
    canvas.drawString(80, y, "合計")
    canvas.drawRightString(515, y, f"{sum(a for _n, a in rows):,}円")
    canvas.drawString(70, y - 40, "上記のとおり内訳を提出します。")
    canvas.drawRightString(525, y - 80, "令和8年4月1日")
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def truncate_pdf(data: bytes, fraction: float = 0.4) -> bytes:
    """The first ``fraction`` of a PDF's bytes: what a broken download leaves behind."""
    return data[: int(len(data) * fraction)]

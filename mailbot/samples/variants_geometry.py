"""Sample builders for page orientation and letter spacing (issue 15): turned pages, rotated
and mirrored text matrices, values and labels spaced by Tc, Tw, TJ or glyph by glyph.

Each draws a normal notice whose text layer is built the way some producer builds it
(`mailbot.samples.geometry_pdf`); the expected reading is the notice's own values.
"""

from __future__ import annotations

from typing import Any

from mailbot.samples.base import Case, Sample, expected, notice, page, problem
from mailbot.samples.special_pdfs import render_image_only_pdf
from mailbot.samples.variants_attach import _single, notice_pdf_bytes

VALUE_SPACE = 4.0  # points between the glyphs of a spaced number or key (11 pt text)
SPACED: dict[str, Any] = {"letter_spaced": True, "value_space": VALUE_SPACE, "notes": "plain"}


def rotate_90(case: Case) -> Sample:
    """/Rotate 90 with the content drawn turned back: a viewer shows it upright."""
    return _single(case, notice_pdf_bytes(case.a, orientation="rotate90"))


def rotate_180(case: Case) -> Sample:
    pdf = notice_pdf_bytes(case.a, layout="wjcs", font="ttf", orientation="rotate180")
    return _single(case, pdf, "電子証書閲覧用「認証キー」等のお知らせ.pdf")


def rotate_270(case: Case) -> Sample:
    pdf = notice_pdf_bytes(case.a, layout="generic", orientation="rotate270")
    return _single(case, pdf, "認証キー等のお知らせ.pdf")


def rotate_inherited(case: Case) -> Sample:
    """Two pages whose /Rotate 90 sits on the page tree node and is inherited."""
    name = "認証キーのお知らせ（横向き）.pdf"
    pdf = notice_pdf_bytes(case.a, case.b, font="ttf", orientation="rotate90_inherited")
    exp = expected([notice(case.a, page(f"attachment:{name}", 1)),
                    notice(case.b, page(f"attachment:{name}", 2))])
    return _single(case, pdf, name, exp=exp)


def text_matrix_rotated(case: Case) -> Sample:
    """No /Rotate: every text object's matrix turns it a quarter (text running upwards)."""
    return _single(case, notice_pdf_bytes(case.a, orientation="text_matrix90"))


def flipped_ctm(case: Case) -> Sample:
    """A top-left-origin producer: the CTM flips the page, each text matrix flips back."""
    return _single(case, notice_pdf_bytes(case.a, font="ttf", orientation="flipped_ctm"))


def mirrored_text(case: Case) -> Sample:
    """Text matrices mirrored left to right: glyphs advance leftwards."""
    return _single(case, notice_pdf_bytes(case.a, orientation="mirrored"))


def scan_sideways(case: Case) -> Sample:
    """A notice scanned sideways: still an image without text, never a wrong read."""
    name = "認証キーのお知らせ_スキャン横.pdf"
    exp = expected(problems=[problem("no_text_layer", f"attachment:{name}")])
    return _single(case, render_image_only_pdf(case.a, rotation=90), name, exp=exp)


def spaced_values_tc_cid(case: Case) -> Sample:
    """Labels and values spaced by Tc (均等割付) in the CID font, a remark after each value."""
    return _single(case, notice_pdf_bytes(case.a, spacing="tc", **SPACED))


def spaced_values_tc_ttf(case: Case) -> Sample:
    return _single(case, notice_pdf_bytes(case.a, font="ttf", spacing="tc", **SPACED))


def spaced_values_tw_ttf(case: Case) -> Sample:
    """A space after every glyph, widened by Tw (word spacing; single-byte TrueType)."""
    return _single(case, notice_pdf_bytes(case.a, font="ttf", spacing="tw", **SPACED))


def spaced_values_tj_cid(case: Case) -> Sample:
    """Every glyph shifted by a TJ array."""
    return _single(case, notice_pdf_bytes(case.a, spacing="tj", **SPACED))


def spaced_values_positioned_ttf(case: Case) -> Sample:
    """Every glyph placed on its own, centred in equal cells (proportional font)."""
    return _single(case, notice_pdf_bytes(case.a, font="ttf", spacing="positioned", **SPACED))


def spaced_table_cells(case: Case) -> Sample:
    """Header-row table whose number and key are placed glyph by glyph at a regular pitch in
    neighbouring cells: they must stay two values."""
    pdf = notice_pdf_bytes(case.a, layout="generic", spacing="positioned", value_space=2.0)
    return _single(case, pdf, "認証キー等のお知らせ.pdf")


def spaced_wjcs_table(case: Case) -> Sample:
    pdf = notice_pdf_bytes(case.a, layout="wjcs", font="ttf", spacing="tc", value_space=5.0)
    return _single(case, pdf, "電子証書閲覧用「認証キー」等のお知らせ.pdf")


def spaced_words_beside_key(case: Case) -> Sample:
    """Plain number and key, each followed on its line by single letters at a regular pitch
    equal to the gap before them: the 12-character key must stay exactly itself."""
    return _single(case, notice_pdf_bytes(case.a, notes="spaced"))


def rotated_and_spaced(case: Case) -> Sample:
    """/Rotate 270 and values shifted by TJ, in the TrueType font."""
    pdf = notice_pdf_bytes(case.a, font="ttf", orientation="rotate270", spacing="tj", **SPACED)
    return _single(case, pdf)

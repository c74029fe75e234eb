"""The reader's geometry (parsers/geometry.py, parsers/pdfchars.py): page orientation and
letter spacing, on real PDFs drawn with reportlab and read with the real engines.

Most tests here are findings of a hostile review of the geometry code (issue 15): each tried
to glue two values, split one, read a key across a line break or from text written another
way, and each once gave a wrong or no reading. The rule they hold the reader to: a notice is
read exactly, or not at all (no notice is better than a wrong one).
"""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from mailbot.samples.catalog import fixed_case
from mailbot.samples.geometry_pdf import ORIENTATIONS
from mailbot.samples.notice_pdf import font_name, render_notice_pdf
from parsers.fields import DOUBT as DOUBT_MARK
from parsers.geometry import DOUBT, EDGE, PLAIN, RUN, gap_kinds, line_segments, page_lines
from parsers.pdfchars import UPRIGHT, frame_of
from parsers.pdfread import AUTO, PDFMINER, read_pdf

FIELDS = fixed_case("ejcs_cid").a
NUMBER, KEY = "35075-00102K", "k7QmO0x2Lp1a"


def pairs(data: bytes, engine: str = AUTO) -> tuple[list[tuple[str, str]], list[str]]:
    reading = read_pdf(data, "attachment:t.pdf", engine=engine)
    return [(n.guarantee_number, n.auth_key) for n in reading.notices], [
        p.code for p in reading.problems
    ]


def drawn(*items: tuple) -> bytes:
    """A page of text objects: (x, y, text[, {"cs": Tc, "m": text matrix, "font": kind}])."""
    buf = io.BytesIO()
    canvas = Canvas(buf, invariant=1)
    for x, y, text, *rest in items:
        opt = rest[0] if rest else {}
        obj = canvas.beginText()
        obj.setTextTransform(*opt.get("m", (1, 0, 0, 1, x, y)))
        obj.setFont(font_name(opt.get("font", "cid")), 11)
        obj.setCharSpace(opt.get("cs", 0.0))
        obj.textOut(text)
        canvas.drawText(obj)
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def one_by_one(x: float, y: float, text: str, space: float, *, extra_after: int = -1,
               extra: float = 0.0) -> list[tuple]:
    """Glyphs placed one text object each, `space` points apart; `extra` more after glyph
    number `extra_after` (0-based)."""
    out: list[tuple] = []
    for i, ch in enumerate(text):
        out.append((x, y, ch))
        x += stringWidth(ch, font_name("cid"), 11) + space + (extra if i == extra_after else 0)
    return out


# -- orientation -------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["ejcs", "wjcs", "generic"])
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_every_orientation_reads_the_notice_in_every_layout(layout, orientation):
    data = render_notice_pdf(FIELDS, layout=layout, orientation=orientation)
    assert pairs(data) == ([(FIELDS.guarantee_number, FIELDS.auth_key)], [])


def test_frames_from_matrices():
    assert frame_of(1, 0, 0, 1) == UPRIGHT
    assert frame_of(0, 1, -1, 0) == (90, False)
    assert frame_of(-1, 0, 0, -1) == (180, False)
    assert frame_of(-1, 0, 0, 1) == (180, True)  # mirrored left to right
    assert frame_of(1, 0, 0, -1) == (0, True)  # upside down mirror


def test_a_sideways_stamp_is_not_read_below_the_last_label():
    """Finding: a label ending the upright text took its "value below" from the first line
    of a stamp written sideways: a wrong key."""
    data = drawn(
        (70, 700, f"保証契約番号：{NUMBER}"),
        (70, 680, "認証キー"),
        (300, 400, "ABCDEFGHJKLM", {"m": (0, 1, -1, 0, 300, 400)}),
    )
    assert pairs(data) == ([], ["incomplete_notice"])


def test_the_displayed_upright_text_comes_first():
    glyphs = [("A", 0, 0, 5, 10, (90, False)), ("B", 0, 20, 5, 30, UPRIGHT)]
    rotated_page = page_lines(glyphs, rotation=90)
    assert [line.text for line in rotated_page] == ["A", "", "B"]
    assert [line.text for line in page_lines(glyphs, rotation=0)] == ["B", "", "A"]


# -- letter spacing ----------------------------------------------------------------------


# Tw applies to the single-byte space code only, so a two-byte CID font has no word spacing.
@pytest.mark.parametrize(("font", "spacing"), [
    (font, spacing) for font in ("cid", "ttf") for spacing in ("tc", "tw", "tj", "positioned")
    if not (font == "cid" and spacing == "tw")])
def test_spaced_values_and_labels_read_as_one_value(font, spacing):
    data = render_notice_pdf(
        FIELDS, font=font, spacing=spacing, value_space=4.0, letter_spaced=True, notes="plain"
    )
    assert pairs(data) == ([(FIELDS.guarantee_number, FIELDS.auth_key)], [])


def test_pdfminer_alone_misses_spaced_values():
    """The sample is a real test of the new path: the old reading found nothing in it."""
    data = render_notice_pdf(FIELDS, value_space=4.0)
    assert pairs(data, engine=PDFMINER)[0] == []
    assert pairs(data) == ([(FIELDS.guarantee_number, FIELDS.auth_key)], [])


def test_a_spaced_value_with_a_colon_in_its_run_reads_whole():
    data = drawn(
        (70, 700, "保証契約番号"), (150, 700, f"：{NUMBER}", {"cs": 4.0}),
        (70, 680, "認証キー"), (150, 680, f"：{KEY}", {"cs": 4.0}),
    )
    assert pairs(data) == ([(NUMBER, KEY)], [])


def test_a_pitch_just_above_touching_keeps_the_key_whole():
    """Finding: Tc 3 pt at 11 pt with uneven glyph boxes: the key's first two glyphs
    seemed to touch, were cut off as a word, and `G1BI1oOZSH` was read as the key."""
    fields = replace(FIELDS, guarantee_number="30072-2688173", auth_key="CTG1BI1oOZSH")
    data = render_notice_pdf(fields, layout="generic", value_space=3.0)
    assert pairs(data) == ([("30072-2688173", "CTG1BI1oOZSH")], [])


def test_a_glyph_overhanging_its_advance_does_not_split_a_spaced_key():
    """Finding: TrueType `f` draws wider than its advance; with a colon opening the run the
    run broke at `f` and the key became two runs."""
    fields = replace(FIELDS, auth_key="CfIviAvcC65A")
    data = render_notice_pdf(fields, font="ttf", value_space=4.0, letter_spaced=True)
    assert pairs(data) == ([(fields.guarantee_number, "CfIviAvcC65A")], [])


def test_glyphs_at_a_regular_step_with_one_wide_gap_are_in_doubt():
    """Finding: glyphs placed one by one 1 pt apart; one gap crossed the word-space width and
    `179NUwo77Oa` (one short) was read as the key. Now the key is not read."""
    fields = replace(FIELDS, guarantee_number="30072-3906391", auth_key="179NUwo77Oaa")
    data = render_notice_pdf(fields, layout="generic", spacing="positioned", value_space=1.0)
    found, _problems = pairs(data)
    assert found in ([], [("30072-3906391", "179NUwo77Oaa")])


def test_spaced_letters_after_a_key_at_its_pitch_leave_the_key_exact():
    """Finding: `ABC` spaced at the very gap before it drew the key's last glyph into its
    run (`p475t13yfkXeABC` is a valid 15-character key)."""
    fields = replace(FIELDS, auth_key="p475t13yfkXe")
    data = render_notice_pdf(fields, notes="spaced")
    assert pairs(data) == ([(fields.guarantee_number, "p475t13yfkXe")], [])


def test_spaced_letters_before_a_key_are_not_glued_to_it():
    data = drawn(
        (70, 700, f"保証契約番号：{NUMBER}"),
        (70, 680, "認証キー："), (130, 680, "ABC", {"cs": 4.0}),
        (130 + 3 * 7.0 + 3 * 4.0 + 4.0, 680, KEY),
    )
    found, _ = pairs(data)
    assert all(key == KEY or key == "ABC" for _n, key in found) and (NUMBER, "ABCk7QmO0x2Lp1a") \
        not in found


def test_neighbouring_spaced_cells_that_collide_give_no_wrong_notice():
    """Finding: values spaced glyph by glyph overflowed their cells until the number's last
    glyph overlapped the key's first; `30072-540186` with `OWprSvAY3ud` (each one short)
    was read. Colliding letters are now in doubt."""
    fields = replace(FIELDS, guarantee_number="30072-5401864", auth_key="EOWprSvAY3ud")
    data = render_notice_pdf(fields, layout="generic", spacing="positioned", value_space=4.0)
    found, _ = pairs(data)
    assert found in ([], [("30072-5401864", "EOWprSvAY3ud")])


def test_neighbouring_spaced_cells_stay_two_values():
    data = render_notice_pdf(FIELDS, layout="generic", spacing="positioned", value_space=2.0)
    assert pairs(data) == ([(FIELDS.guarantee_number, FIELDS.auth_key)], [])


def test_a_spaced_number_whose_last_glyph_stands_off_is_not_read_short():
    """A lone `K` a little further than the run's pitch: `35075-00102` would be a valid
    (wrong) number, so the number is not read."""
    data = drawn(
        (70, 700, "保証契約番号："), *one_by_one(150, 700, NUMBER, 4, extra_after=10, extra=2.5),
        (70, 680, "認証キー："), *one_by_one(150, 680, KEY, 4),
    )
    assert pairs(data) == ([], ["incomplete_notice"])


def test_a_spaced_key_split_by_one_wider_step_is_not_read():
    data = drawn(
        (70, 700, "保証契約番号："), *one_by_one(150, 700, NUMBER, 4),
        (70, 680, "認証キー："), *one_by_one(150, 680, KEY, 4, extra_after=9, extra=3.0),
    )
    assert pairs(data) == ([], ["incomplete_notice"])


def test_a_spaced_key_across_a_line_break_is_incomplete():
    data = drawn(
        (70, 700, "保証契約番号："), *one_by_one(150, 700, NUMBER, 4),
        (70, 680, "認証キー："), *one_by_one(150, 680, KEY[:6], 4),
        *one_by_one(150, 665, KEY[6:], 4),
    )
    assert pairs(data) == ([], ["incomplete_notice"])


def test_two_spaced_values_on_one_line_stay_apart():
    data = drawn(
        (70, 700, "保証契約番号"), (230, 700, "認証キー"),
        (70, 680, NUMBER, {"cs": 3.0}), (230, 680, KEY, {"cs": 3.0}),
    )
    assert pairs(data) == ([(NUMBER, KEY)], [])


def test_a_key_next_to_words_is_exact():
    data = drawn(
        (70, 700, f"保証契約番号 {NUMBER} 様"),
        (70, 680, f"認証キー {KEY} ABC 1 2"),
    )
    assert pairs(data) == ([(NUMBER, KEY)], [])


# -- gap kinds on boxes -----------------------------------------------------------------


def boxes(*spans: tuple[str, float, float]) -> list[tuple[str, float, float, float, float]]:
    return [(t, x0, x1, 0.0, 10.0) for t, x0, x1 in spans]


def test_gap_kinds_of_a_spaced_word_beside_a_tight_one():
    line = boxes(("a", 0, 5), ("b", 5, 10), ("X", 14, 19), ("Y", 23, 28), ("Z", 32, 37))
    assert gap_kinds(line, 10.0) == [PLAIN, PLAIN, RUN, RUN]
    # At the run's own pitch from the tight word: a word space, not a cell boundary.
    assert [s.text for s in line_segments(line)] == ["ab XYZ"]


def test_gap_kinds_edge_and_doubt():
    run = [("1", 0, 5), ("2", 8, 13), ("3", 16, 21), ("4", 24, 29)]
    clear = boxes(*run, ("A", 40, 45))  # 11 pt after a 3 pt pitch: the next cell
    assert gap_kinds(clear, 10.0)[-1] == EDGE
    near = boxes(*run, ("A", 34, 39))  # 5 pt: the run's own last glyph, or not?
    assert gap_kinds(near, 10.0)[-1] == DOUBT
    assert DOUBT_MARK not in "".join(s.text for s in line_segments(clear))
    assert DOUBT_MARK in line_segments(near)[0].text


def test_fake_bold_duplicates_are_read_once():
    line = boxes(("A", 0, 5), ("A", 0.3, 5.3), ("B", 5, 10), ("B", 5.3, 10.3))
    glyphs = [(t, x0, y0, x1, y1, UPRIGHT) for t, x0, x1, y0, y1 in line]
    assert [line.text for line in page_lines(glyphs)] == ["AB"]


def test_a_key_drawn_into_the_next_word_is_not_read_longer():
    """Glyphs of the key and of a word after it overlapping (no gap anywhere on the line):
    `k7QmO0x2Lp1aAB` would be a valid key."""
    key_width = stringWidth(KEY, font_name("cid"), 11)
    data = drawn(
        (70, 700, f"保証契約番号：{NUMBER}"),
        (70, 680, "認証キー："), (130, 680, KEY), (130 + key_width - 2.5, 680, "AB"),
    )
    found, _ = pairs(data)
    assert (NUMBER, KEY + "AB") not in found and found in ([], [(NUMBER, KEY)])


# -- findings of a seeded fuzz over layouts, fonts, spacings and orientations -----------

FUZZ_FINDINGS = [
    # A Tc just above touching: spaced `ABC` after the key matched the key's run by a
    # coincidence of glyph centres (`U0WmLlSQ8qPIABC`): a run has one kind of regularity.
    (("35075-19190E", "U0WmLlSQ8qPI"),
     {"font": "cid", "spacing": "tc", "value_space": 2.9, "notes": "spaced"}),
    # Digits placed one by one with a narrow `1` and a wide `M`: `35012-0970` was read.
    (("35012-09701M", "DCCJOoBryO81"),
     {"layout": "wjcs", "font": "ttf", "spacing": "positioned", "value_space": 0.5,
      "letter_spaced": True, "orientation": "rotate180"}),
    # Mirrored glyphs placed one by one 0.1 pt apart: `tZeZEge1jmY` was read.
    (("35140-02180H", "tZeZEge1jmYT"),
     {"spacing": "positioned", "value_space": 0.1, "orientation": "mirrored"}),
    # A colon opening a value placed glyph by glyph chose equal gaps over equal steps.
    (("35075-09523A", "OBYJmhcxIZ6a"),
     {"font": "ttf", "spacing": "positioned", "value_space": 4.0, "letter_spaced": True,
      "notes": "plain"}),
    # Equal gaps for four glyphs, then equal steps for the whole key (`Kk8J j7Hh6Gg5`).
    (("30072-0003951", "Kk8Jj7Hh6Gg5"),
     {"layout": "generic", "spacing": "positioned", "value_space": 2.0}),
]


@pytest.mark.parametrize(("pair", "options"), FUZZ_FINDINGS)
def test_fuzz_findings_read_exactly(pair, options):
    fields = replace(FIELDS, guarantee_number=pair[0], auth_key=pair[1])
    assert pairs(render_notice_pdf(fields, **options)) == ([pair], [])


def test_random_layouts_never_give_a_wrong_notice():
    """Seeded: random layout, font, spacing kind and amount, labels, remarks, orientation.
    Some constructions are ambiguous (values overflowing their cells) and are not read;
    none may be read wrong."""
    import random

    from mailbot.samples.catalog import _corpus_case

    rng = random.Random(15)
    read = 0
    for i in range(60):
        case = _corpus_case("spaced_values_tc_cid", i, rng)
        layout, font = rng.choice(["ejcs", "wjcs", "generic"]), rng.choice(["cid", "ttf"])
        spacing = rng.choice(["tc", "tj", "positioned"] + (["tw"] if font == "ttf" else []))
        options = {
            "layout": layout, "font": font, "spacing": spacing,
            "value_space": round(rng.uniform(0, 6), 1), "letter_spaced": rng.random() < 0.5,
            "notes": rng.choice(["", "plain", "spaced"]) if layout == "ejcs" else "",
            "orientation": rng.choice(ORIENTATIONS),
        }
        found, _ = pairs(render_notice_pdf(case.a, **options))
        want = (case.a.guarantee_number, case.a.auth_key)
        assert found in ([], [want]), options
        read += found == [want]
    assert read >= 50  # and most are read

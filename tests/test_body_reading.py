"""Notices typed into mail text: labels, prose, several notices, incomplete ones."""

import pytest

from parsers.fields import read_fields, text_lines
from parsers.layouts import generic_layout


def read(text):
    return read_fields(text_lines(text), generic_layout(), "body")


def test_two_lines():
    result = read("いつもお世話になっております。\n保証契約番号：35075-00001M\n認証キー：Z28YUEAJ38ux\n")
    assert [(n.guarantee_number, n.auth_key) for n in result.notices] == [
        ("35075-00001M", "Z28YUEAJ38ux")
    ]
    assert not result.incomplete


def test_one_line_with_full_width_space_and_letter_spacing():
    result = read("保 証 契 約 番 号：３５０７５－０００１２Ｍ　認 証 キ ー：Ab3dEf7hJk9m")
    assert [(n.guarantee_number, n.auth_key) for n in result.notices] == [
        ("35075-00012M", "Ab3dEf7hJk9m")
    ]


def test_prose_mentions_of_labels_are_not_values():
    result = read(
        "上記の「保証契約番号」と「認証キー」をもって電子保証を閲覧ください。\n"
        "保証契約番号と認証キーは添付のとおりです。\n"
    )
    assert result.notices == [] and not result.incomplete


def test_value_on_the_next_line():
    result = read("保証契約番号\n35075-00001M\n認証キー\nZ28YUEAJ38ux\n")
    assert [n.auth_key for n in result.notices] == ["Z28YUEAJ38ux"]


def test_two_notices_with_fields():
    result = read(
        "1. 前払金\n工事名：〇〇浄水場△△修繕工事\n保証区分：前払金保証\n"
        "保証契約番号：35075-00001M\n認証キー：Z28YUEAJ38ux\n\n"
        "2. 契約\n保証区分：契約保証\n保証契約番号：35075-00002M\n認証キー：l1O0aB3dEf7h\n"
    )
    assert [(n.kind, n.guarantee_number, n.auth_key) for n in result.notices] == [
        ("前払金保証", "35075-00001M", "Z28YUEAJ38ux"),
        ("契約保証", "35075-00002M", "l1O0aB3dEf7h"),
    ]
    assert result.notices[0].project_name == "〇〇浄水場△△修繕工事"
    assert result.notices[1].project_name is None


def test_number_without_key_is_incomplete_not_half_a_notice():
    result = read("保証契約番号：35075-00001M\n認証キーは別途お送りします。\n")
    assert result.notices == [] and result.incomplete


def test_quoted_reply_lines_are_not_read():
    # A reply quoting the old notice must not submit the stale key again.
    result = read(
        "保証契約番号：35075-00001M\n認証キー：aB3dEf7hJk9m\n\n"
        "> 保証契約番号：35075-00001M\n> 認証キー：Z28YUEAJ38ux\n"
    )
    assert [n.auth_key for n in result.notices] == ["aB3dEf7hJk9m"]


def test_html_table_cells():
    from parsers.htmltext import html_to_text

    html = (
        "<table><tr><th>保証契約番号</th><th>認証キー</th></tr>"
        "<tr><td>35075-00001M</td><td>Z28YUEAJ38ux</td></tr></table>"
    )
    result = read(html_to_text(html))
    assert [(n.guarantee_number, n.auth_key) for n in result.notices] == [
        ("35075-00001M", "Z28YUEAJ38ux")
    ]


# --- Regressions from the review of the reader: never a wrong notice. ---------------------

def pairs(text):
    return [(n.guarantee_number, n.auth_key) for n in read(text).notices]


def test_key_wrapped_onto_the_next_line_is_incomplete_not_a_prefix():
    result = read("保証契約番号：35075-00001M\n認証キー：Z28YUEAJ3\n8ux\n")
    assert result.notices == [] and result.incomplete


def test_a_signature_after_a_blank_line_is_not_a_wrapped_key():
    assert pairs("保証契約番号：35075-00001M\n認証キー：Z28YUEAJ38ux\n\nTANAKA\n") == [
        ("35075-00001M", "Z28YUEAJ38ux")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "保証契約番号：35075-00001M\n認証キー：別途PDFにてお送りします（Ref: INV20240601）\n",
        "保証契約番号：35075-00001M\n認証キー: see the attached document\n",
        "保証契約番号：未定（TEL 03-1234-5678）\n認証キー：Z28YUEAJ38ux\n",
        "保証契約番号：\n045-123-4567\n認証キー：Z28YUEAJ38ux\n",
        "保証契約番号：35075-00001M\n認証キー\n受注者名 SUZUKIKENSETSU\n",
        "保証契約番号：35075-00001M\n保証契約番号：35075-00002M\n認証キー：Z28YUEAJ38ux\n"
        "認証キー：Qw2Er4Ty6Ui0\n",
        "保証契約番号：35075-00001M\n認証キー：Ⅸ28YUEAJ38ux\n",
        "保証契約番号：35075-00001M\n認証キー：Z28YUEAJ38ux①\n",
        "保証契約番号：35075-00001M\n認証キー：Z28YUE²AJ38ux\n",
        "保証契約番号：35075-00001M\n認証キー：Z28YUE-AJ38ux\n",
    ],
)
def test_doubtful_values_give_no_notice(text):
    result = read(text)
    assert result.notices == [] and result.incomplete


@pytest.mark.parametrize(
    "text",
    [
        "【保証契約番号】35075-00001M\n【認証キー】Z28YUEAJ38ux",
        "「保証契約番号」35075-00001M\n「認証キー」Z28YUEAJ38ux",
        "①保証契約番号：35075-00001M\n②認証キー：Z28YUEAJ38ux",
        "1.保証契約番号：35075-00001M\n2.認証キー：Z28YUEAJ38ux",
        "★保証契約番号：35075-00001M\n★認証キー：Z28YUEAJ38ux",
        "保証契約番号→35075-00001M\n認証キー→Z28YUEAJ38ux",
        "保証契約番号（35075-00001M）\n認証キー（Z28YUEAJ38ux）",
        "保証契約番号は 35075-00001M 、認証キーは Z28YUEAJ38ux です。",
        "保証契約番号：35075-00001M（旧 35075-00000M）\n認証キー：Z28YUEAJ38ux",
        "保証契約番号：35075-00001M\n認証KEY：Z28YUEAJ38ux",
        "保証契約番号：35075-00001M\n認証キ－：Z28YUEAJ38ux",
    ],
)
def test_label_forms_contractors_type(text):
    assert pairs(text) == [("35075-00001M", "Z28YUEAJ38ux")]


def test_a_table_typed_with_wide_spaces_reads_every_row():
    text = (
        "保証契約番号　　　認証キー\n35075-00001M　　Z28YUEAJ38ux\n35075-00002M　　Q9wERtyU12ab\n"
    )
    assert pairs(text) == [("35075-00001M", "Z28YUEAJ38ux"), ("35075-00002M", "Q9wERtyU12ab")]


def test_a_single_wide_space_stays_inside_a_name():
    result = read("受注者名：〇〇建設\u3000株式会社\n保証契約番号：35075-00001M\n認証キー：Z28YUEAJ38ux")
    assert result.notices[0].contractor == "〇〇建設 株式会社"


def test_huge_typed_values_give_no_notice():
    result = read("保証契約番号：" + "1" * 60000 + "\n" + "認証キー：\n" * 5000)
    assert result.notices == []


def _mail_with_cover_line(cover: str) -> bytes:
    from email.message import EmailMessage

    from mailbot.samples.notice_pdf import render_notice_pdf

    from .notices import FIELDS

    message = EmailMessage()
    message["From"] = "tanto@maru.example.jp"
    message["Subject"] = "提出"
    message.set_content(f"工事名：〇〇浄水場\n{cover}\n")
    message.add_attachment(render_notice_pdf(FIELDS), maintype="application", subtype="pdf",
                           filename="お知らせ.pdf")
    return message.as_bytes()


def test_a_cover_line_naming_the_attached_notices_number_is_not_incomplete():
    from parsers import Reader

    from .notices import FIELDS

    ok = Reader().read_bytes(_mail_with_cover_line(f"保証契約番号：{FIELDS.guarantee_number}"), "m")
    assert [n.guarantee_number for n in ok.notices] == [FIELDS.guarantee_number]
    assert ok.problems == []
    # Another number, or a key without its number, still says the text is incomplete.
    other = Reader().read_bytes(_mail_with_cover_line("保証契約番号：35075-09999M"), "m")
    assert [p.code for p in other.problems] == ["incomplete_notice"]
    key = Reader().read_bytes(_mail_with_cover_line("認証キー：Ab3dEf7hJk9m"), "m")
    assert [p.code for p in key.problems] == ["incomplete_notice"]

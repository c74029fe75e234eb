"""Notices typed into mail text: labels, prose, several notices, incomplete ones."""

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


def test_quoted_reply_lines_are_read():
    result = read("> 保証契約番号：35075-00001M\n> 認証キー：Z28YUEAJ38ux\n")
    assert len(result.notices) == 1


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

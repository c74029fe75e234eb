"""Normalisation: what counts as the same text, and what is never "corrected"."""

import pytest

from parsers.normalize import canonical_key, canonical_number, clean_value, normalize_text


@pytest.mark.parametrize(
    "raw",
    ["35075-00001M", "35075−00001M", "３５０７５－００００１Ｍ", "35075 - 00001m", "35075ー00001M",
     "35075‐00001M", "35075—00001M"],
)
def test_number_dash_and_width_variants_fold_to_one_form(raw):
    assert canonical_number(raw) == "35075-00001M"


def test_number_digit_counts_are_not_hard_coded():
    assert canonical_number("30072-0000001") == "30072-0000001"
    assert canonical_number("1234-567") == "1234-567"


@pytest.mark.parametrize("raw", ["35075", "35075-", "ABCDE-00001M", "35075-00001MM", ""])
def test_not_a_number(raw):
    assert canonical_number(raw) is None


def test_key_keeps_case_and_confusables():
    assert canonical_key("Z28YUEAJ38ux") == "Z28YUEAJ38ux"
    assert canonical_key("ｌ1O0ｌ1O0ab") == "l1O0l1O0ab"  # width folded, nothing guessed


@pytest.mark.parametrize("raw", ["Z28Y-UEAJ38ux", "鍵Z28YUEAJ38", "short", "Z28YUEAJ38ux!"])
def test_not_a_key(raw):
    assert canonical_key(raw) is None


def test_radicals_folded_but_katakana_long_vowel_kept():
    assert normalize_text("⼯事名") == "工事名"  # Kangxi radical (NFKC)
    assert normalize_text("⻑坂") == "長坂"  # CJK Radicals Supplement (not NFKC)
    assert normalize_text("認証キー") == "認証キー"


def test_clean_value_collapses_space_and_folds_width():
    assert clean_value("  〇〇建設\u3000\u3000株式会社 ") == "〇〇建設 株式会社"
    assert clean_value("㈱〇〇建設") == "(株)〇〇建設"
    assert clean_value("   ") is None

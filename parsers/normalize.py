"""Text normalisation shared by every reader: one place that decides what "the same text" means.

PDF producers and mail clients write the same notice in many ways: full-width digits, a
dozen dash code points (reportlab's CID fonts give U+2212 for a full-width hyphen), Kangxi
radicals (⼯ for 工) and CJK Radicals Supplement forms (⻑ for 長) that NFKC does not fold,
letter-spaced labels. `normalize_text` folds all of these; `canonical_number` and
`canonical_key` turn a value into the contract's ASCII form or refuse it. Keys are never
"corrected" (no O→0 guessing, docs/contracts.md): anything that is not plain ASCII letters and
digits after width folding is rejected.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Every dash-like code point seen in notices, folded to ASCII '-' everywhere.
_DASH_RE = re.compile("[\u2010-\u2015\u2212\u2796\uff0d\ufe63\u2043\u02d7]")
# Inside a guarantee number only: typists use the long-vowel mark and box-drawing lines too
# (never folded in general text, where キー must stay キー).
_NUMBER_DASH_RE = re.compile("[\u30fc\uff70\u2500\u2501]")

# CJK Radicals Supplement (U+2E80–U+2EF3) has no decomposition in Unicode, so NFKC keeps it.
# These are the forms that stand for ordinary kanji in Japanese text.
_RADICALS_SUPPLEMENT = {
    "\u2e81": "厂", "\u2e84": "乙", "\u2e85": "人", "\u2e86": "冂", "\u2e87": "几",
    "\u2e88": "刀", "\u2e89": "刀", "\u2e8a": "卜", "\u2e8b": "卩", "\u2e8c": "小",
    "\u2e8d": "小", "\u2e8e": "尢", "\u2e8f": "尢", "\u2e90": "尢", "\u2e91": "尢",
    "\u2e92": "巳", "\u2e93": "幺", "\u2e94": "彐", "\u2e95": "彐", "\u2e96": "心",
    "\u2e97": "心", "\u2e98": "手", "\u2e99": "攴", "\u2e9b": "旡", "\u2e9c": "日",
    "\u2e9d": "月", "\u2e9e": "歹", "\u2e9f": "母", "\u2ea0": "民", "\u2ea1": "水",
    "\u2ea2": "水", "\u2ea3": "火", "\u2ea4": "爪", "\u2ea5": "爪", "\u2ea6": "爿",
    "\u2ea7": "牛", "\u2ea8": "犬", "\u2ea9": "王", "\u2eaa": "疋", "\u2eab": "目",
    "\u2eac": "示", "\u2ead": "示", "\u2eae": "竹", "\u2eaf": "糸", "\u2eb0": "糸",
    "\u2eb1": "网", "\u2eb2": "网", "\u2eb3": "网", "\u2eb4": "网", "\u2eb5": "网",
    "\u2eb6": "羊", "\u2eb7": "羊", "\u2eb8": "羊", "\u2eb9": "老", "\u2eba": "肀",
    "\u2ebb": "肀", "\u2ebc": "肉", "\u2ebd": "臼", "\u2ebe": "艸", "\u2ebf": "艸",
    "\u2ec0": "艸", "\u2ec1": "虎", "\u2ec2": "衣", "\u2ec3": "襾", "\u2ec4": "西",
    "\u2ec5": "見", "\u2ec6": "角", "\u2ec7": "角", "\u2ec8": "言", "\u2ec9": "貝",
    "\u2eca": "足", "\u2ecb": "車", "\u2ecc": "辵", "\u2ecd": "辵", "\u2ece": "辵",
    "\u2ecf": "邑", "\u2ed0": "金", "\u2ed1": "長", "\u2ed2": "長", "\u2ed3": "長",
    "\u2ed4": "門", "\u2ed5": "阜", "\u2ed6": "阜", "\u2ed7": "雨", "\u2ed8": "青",
    "\u2ed9": "韋", "\u2eda": "頁", "\u2edb": "風", "\u2edc": "飛", "\u2edd": "食",
    "\u2ede": "食", "\u2edf": "食", "\u2ee0": "食", "\u2ee1": "首", "\u2ee2": "馬",
    "\u2ee3": "骨", "\u2ee4": "鬼", "\u2ee5": "魚", "\u2ee6": "鳥", "\u2ee7": "鹵",
    "\u2ee8": "麦", "\u2ee9": "黄", "\u2eea": "黽", "\u2eeb": "斉", "\u2eec": "斉",
    "\u2eed": "歯", "\u2eee": "歯", "\u2eef": "竜", "\u2ef0": "竜", "\u2ef1": "亀",
    "\u2ef2": "亀", "\u2ef3": "亀",
}
_RADICALS_TABLE = str.maketrans(_RADICALS_SUPPLEMENT)

_SPACE_RE = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_ALL_SPACE_RE = re.compile(r"\s+")

NUMBER_RE = re.compile(r"^[0-9]{3,}-[0-9]{3,}[A-Z]?$")
KEY_RE = re.compile(r"^[A-Za-z0-9]{8,32}$")


@lru_cache(maxsize=4096)
def is_ascii_lookalike(ch: str) -> bool:
    """A character NFKC would turn into ASCII letters or digits although it is not a
    full-width form: ① → 1, Ⅸ → IX, ² → 2, ℓ → l. Folding those would let a key that was
    never issued read as one that was, so they are kept as they are (and then fail to
    validate as a key or number)."""
    if "\uff01" <= ch <= "\uff5e":
        return False
    folded = unicodedata.normalize("NFKC", ch)
    return folded != ch and folded.isascii() and any(c.isalnum() for c in folded)


def _nfkc(text: str) -> str:
    if text.isascii():
        return text
    out: list[str] = []
    start = 0
    for index, ch in enumerate(text):
        if ord(ch) > 0x7F and is_ascii_lookalike(ch):
            out.append(unicodedata.normalize("NFKC", text[start:index]))
            out.append(ch)
            start = index + 1
    out.append(unicodedata.normalize("NFKC", text[start:]))
    return "".join(out)


def normalize_text(text: str) -> str:
    """NFKC (except ASCII look-alikes) plus the foldings NFKC misses; keeps line breaks,
    collapses runs of spaces."""
    text = _nfkc(text.translate(_RADICALS_TABLE))
    text = _DASH_RE.sub("-", text)
    return _SPACE_RE.sub(" ", text)


def fold_spaces(text: str) -> str:
    """Remove all white space: how names and labels are compared (docs/contracts.md)."""
    return _ALL_SPACE_RE.sub("", text)


def clean_value(text: str) -> str | None:
    """A display value: normalised, one space between words, trimmed; None when empty."""
    value = normalize_text(text).strip()
    return value or None


def canonical_number(text: str) -> str | None:
    """The contract form of a guarantee number (`35075-00001M`), or None if it is not one.

    The trailing letter is upper-cased on purpose: numbers are issued in capitals and a
    typist's `m` names the same guarantee (unlike keys, whose case is part of the secret)."""
    value = _NUMBER_DASH_RE.sub("-", fold_spaces(normalize_text(text))).upper()
    return value if NUMBER_RE.match(value) else None


def canonical_key(text: str) -> str | None:
    """An authentication key exactly as written (case kept), or None if it is not one."""
    value = fold_spaces(normalize_text(text))
    return value if KEY_RE.match(value) else None


_COMPANY_FORMS = {"(株)": "株式会社", "(有)": "有限会社", "(同)": "合同会社", "(資)": "合資会社",
                  "(名)": "合名会社"}


def name_key(text: str) -> str:
    """How names (issuer, project, contractor) compare (docs/contracts.md): full NFKC — here the
    look-alikes fold too (その① = その1, 第Ⅱ期 = 第II期) — no white space, and company-form
    abbreviations expanded on both sides ((株) and ㈱ → 株式会社)."""
    value = fold_spaces(unicodedata.normalize("NFKC", normalize_text(text)))
    for short, full in _COMPANY_FORMS.items():
        value = value.replace(short, full)
    return value

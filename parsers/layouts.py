"""Notice layouts as data: titles that identify a layout and the labels of each field.

A layout file (`parsers/layouts/*.toml`) names the layout, its priority, the title words
that pick it and, per field, the label variants. The engine in `fields` is generic; adding a
surety's new notice means adding a file here and a golden sample, not code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .normalize import fold_spaces, normalize_text

FIELDS = ("project_name", "contractor", "kind", "guarantee_number", "auth_key")


@dataclass(frozen=True)
class Layout:
    name: str
    priority: int
    titles: tuple[str, ...]
    sureties: tuple[str, ...]
    labels: dict[str, tuple[str, ...]]
    label_re: re.Pattern[str]
    label_field: dict[str, str]

    def matches_title(self, folded_page_text: str) -> bool:
        return any(title in folded_page_text for title in self.titles)

    def field_of(self, label_text: str) -> str:
        """The field a matched label names (labels match case-insensitively: 認証KEY)."""
        return self.label_field[_label_key(label_text)]


def _label_key(label: str) -> str:
    return fold_spaces(label).replace("ー", "-").casefold()


def _label_pattern(label: str) -> str:
    """`工事名` → `工\\s*事\\s*名`: letter-spaced labels match too, and a long-vowel mark
    typed as a hyphen (認証キ－, folded to `-`) still reads as one."""
    return r"\s*".join("[ー-]" if ch == "ー" else re.escape(ch) for ch in label)


def _strings(value: object, what: str) -> tuple[str, ...]:
    """A layout file's list of strings, each normalised and its white space folded."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"layout {what}: a list of strings expected, got {value!r}")
    strings = [item for item in value if isinstance(item, str)]
    if len(strings) != len(value):
        raise ValueError(f"layout {what}: a list of strings expected, got {value!r}")
    return tuple(fold_spaces(normalize_text(item)) for item in strings)


def _build(data: dict[str, object]) -> Layout:
    labels_raw = data["labels"]
    assert isinstance(labels_raw, dict)
    priority = data.get("priority", 0)
    assert isinstance(priority, int)
    labels: dict[str, tuple[str, ...]] = {}
    label_field: dict[str, str] = {}
    for field_name in FIELDS:
        variants = _strings(labels_raw.get(field_name, ()), f"labels.{field_name}")
        labels[field_name] = variants
        for variant in variants:
            label_field[_label_key(variant)] = field_name
    # Longest first, so 商品(保証区分) wins over 商品 and 受注者名 over 受注者.
    ordered = sorted({v for vs in labels.values() for v in vs}, key=len, reverse=True)
    label_re = re.compile("|".join(_label_pattern(v) for v in ordered), re.IGNORECASE)
    return Layout(
        name=str(data["name"]),
        priority=priority,
        titles=_strings(data.get("titles", ()), "titles"),
        sureties=_strings(data.get("sureties", ()), "sureties"),
        labels=labels,
        label_re=label_re,
        label_field=label_field,
    )


@lru_cache(maxsize=1)
def load_layouts() -> tuple[Layout, ...]:
    """All bundled layouts, highest priority first (ties by name, for stable output)."""
    folder = resources.files("parsers") / "layouts"
    layouts = [
        _build(tomllib.loads(entry.read_text(encoding="utf-8")))
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    ]
    return tuple(sorted(layouts, key=lambda lay: (-lay.priority, lay.name)))


def pick_layout(page_text: str) -> Layout:
    """The highest-priority layout whose title is on the page; the fallback otherwise."""
    folded = fold_spaces(normalize_text(page_text))
    layouts = load_layouts()
    for layout in layouts:
        if layout.titles and layout.matches_title(folded):
            return layout
    return generic_layout()


def generic_layout() -> Layout:
    return next(lay for lay in load_layouts() if not lay.titles)

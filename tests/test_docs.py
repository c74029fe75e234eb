"""The repository is self-contained and its documentation cannot drift from the tree.

(a) No tracked text file points outside the repository: no citation of the design brief
    that lives outside it, no shared folder beside the clone, no absolute path of a
    development machine.
(b) Every relative Markdown link in README.md and docs/*.md resolves to a file or folder
    in the repository.
(c) Every module or package path named in backticks in docs/*.md (`mailbot/xyz/`,
    `parsers/abc.py`, `parsers/layouts/*.toml` …) exists.

Needs only git and the standard library.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
MARKDOWN = [ROOT / "README.md", *DOCS]

# Built from pieces so that this file does not match itself.
OUTSIDE = [
    re.compile(re.escape(".." + "/shared")),
    re.compile(re.escape("DESIGN" + ".md")),
    re.compile(r"\bDESIGN" + r"\s*§"),
    re.compile(re.escape("/" + "work/")),
]

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_PATH = re.compile(
    r"`((?:mailbot|parsers|templates|config|tests|scripts|bench)/[A-Za-z0-9_./*-]*)`"
)


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                         check=True).stdout
    return [ROOT / name for name in out.decode("utf-8").split("\0") if name]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary (or vanished) file."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_no_tracked_file_points_outside_the_repository():
    found = []
    for path in tracked_files():
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern.search(line) for pattern in OUTSIDE):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "points outside the repository:\n" + "\n".join(found)


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_markdown_links_resolve(doc: Path):
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, https:, mailto: … and anchors within the page
        relative = target.split("#", 1)[0]
        resolved = (doc.parent / relative).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links that resolve to nothing: {broken}"


def test_docs_exist():
    names = {p.name for p in DOCS}
    assert {"README.md", "architecture.md", "contracts.md", "reliability.md", "security.md",
            "reading.md", "testing.md", "contributing.md"} <= names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_paths_named_in_the_docs_exist(doc: Path):
    missing = []
    for name in sorted(set(CODE_PATH.findall(doc.read_text(encoding="utf-8")))):
        name = name.rstrip(".")
        found = list(ROOT.glob(name.rstrip("/"))) if "*" in name else [ROOT / name]
        if not any(p.exists() and (p.is_dir() or not name.endswith("/")) for p in found):
            missing.append(name)
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"

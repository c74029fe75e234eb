"""The house rules of docs/architecture.md, checked on the source tree.

- `parsers/` is a library: it imports nothing from `mailbot`.
- Dependencies between mailbot's packages run one way: the package graph has no cycle.
- The command line is `mailbot/cli/`: nothing below it imports it, and no `*_cmd.py` module
  sits at the package top.
- No module is longer than 450 lines.
- Every import between packages is one the "Who may import whom" table of
  docs/architecture.md allows, so the page and the code cannot drift apart.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 450


def _modules() -> list[Path]:
    return sorted(p for top in ("mailbot", "parsers") for p in (ROOT / top).rglob("*.py")
                  if "migrations" not in p.parts)


def _unit(parts: tuple[str, ...]) -> str:
    """The unit of the dependency rules: `parsers`, or `mailbot.<package-or-module>`."""
    if parts[0] == "parsers":
        return "parsers"
    return ".".join(parts[:2]) if len(parts) > 1 else "mailbot"


def _imports(path: Path) -> set[tuple[str, ...]]:
    """Every first-party module `path` imports, as dotted parts."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    package = parts[:-1]
    found: set[tuple[str, ...]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join((*base, node.module) if node.module else base)]
            else:
                names = [node.module or ""]
        for name in names:
            if name.split(".")[0] in ("mailbot", "parsers"):
                found.add(tuple(name.split(".")))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in _modules():
        unit = _unit(path.relative_to(ROOT).with_suffix("").parts)
        for target in _imports(path):
            other = _unit(target)
            if other != unit and other != "mailbot":  # `mailbot/__init__` holds only a version
                graph[unit].add(other)
    return graph


def test_parsers_import_nothing_from_mailbot() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _modules()
                 if p.relative_to(ROOT).parts[0] == "parsers"
                 and any(t[0] == "mailbot" for t in _imports(p))]
    assert offenders == []


def test_package_dependencies_run_one_way() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(unit: str, path: list[str]) -> None:
        state[unit] = 1
        for other in sorted(graph.get(unit, ())):
            if state.get(other) == 1:
                cycles.append([*path[path.index(other):], other])
            elif other not in state:
                visit(other, [*path, other])
        state[unit] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])
    assert cycles == [], "import cycles between packages: " + "; ".join(
        " → ".join(c) for c in cycles)


def test_the_command_line_is_on_top() -> None:
    users = sorted(unit for unit, targets in _graph().items()
                   if "mailbot.cli" in targets and unit != "mailbot.cli")
    assert users == []
    assert sorted(p.name for p in (ROOT / "mailbot").glob("*_cmd.py")) == []
    assert not (ROOT / "mailbot" / "cli.py").exists()


def test_no_module_is_longer_than_the_limit() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := p.read_text(encoding="utf-8").count("\n")) > MAX_LINES}
    assert long == {}


def _unit_of_doc_path(path: str) -> str:
    """`mailbot/ledger/` → `mailbot.ledger`; `mailbot/daemon.py` → `mailbot.daemon`."""
    parts = tuple(path.strip("/").removesuffix(".py").split("/"))
    return _unit(parts)


def _allowed() -> dict[str, set[str] | None]:
    """The documented table: unit → the units it may import (None: everything)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("| package | may import |", 1)[1].split("\n\n", 1)[0]
    allowed: dict[str, set[str] | None] = {}
    for line in section.splitlines()[2:]:
        cells = line.split("|")
        if len(cells) < 4:
            continue
        units = {_unit_of_doc_path(p) for p in re.findall(r"`((?:mailbot|parsers)/[^`]*)`", cells[1])}
        targets: set[str] | None = {
            _unit_of_doc_path(p) for p in re.findall(r"`((?:mailbot|parsers)/[^`]*)`", cells[2])}
        if "everything" in cells[2]:
            targets = None
        for unit in units:
            allowed[unit] = targets
    return allowed


def test_imports_follow_the_documented_table() -> None:
    allowed = _allowed()
    assert "parsers" in allowed and "mailbot.pipeline" in allowed  # the table was read
    undocumented = sorted(unit for unit in _graph() if unit not in allowed)
    assert undocumented == [], "packages missing from docs/architecture.md"
    forbidden = sorted(
        f"{unit} → {other}" for unit, targets in _graph().items()
        for other in targets
        if (permitted := allowed.get(unit)) is not None and other not in permitted)
    assert forbidden == [], "imports the table of docs/architecture.md does not allow"

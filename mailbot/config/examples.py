"""The example configurations mailbot ships: `config/*.toml` at the top of the repository,
`mailbot/example_configs/` in an installed wheel (setup.py maps one onto the other).

They are read with `importlib.resources` from the installed package; in a source checkout
(editable install, or the repository on `sys.path`) that package does not exist and the
repository's `config/` folder is read instead, as `mailbot.replies.render` does for the
templates. `mailbot init` writes its starter file from `mailbot.starter.toml`.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from mailbot.errors import UsageError

PACKAGE = "mailbot.example_configs"
STARTER = "mailbot.starter.toml"


def examples_folder() -> Traversable:
    """Where the example configurations are: the installed package, else the checkout's `config/`."""
    try:
        found: Traversable | None = resources.files(PACKAGE)
    except ModuleNotFoundError:
        found = None
    if found is not None and found.is_dir():
        return found
    return Path(__file__).resolve().parents[2] / "config"


def example_names() -> list[str]:
    """The file names of the shipped examples, sorted (`contractor.example.toml`, …)."""
    folder = examples_folder()
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".toml"))


def example_text(name: str) -> str:
    """The text of one shipped example; a missing one is an error naming where it was sought."""
    folder = examples_folder()
    try:
        return (folder / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"the example configuration {name} is missing from {folder} "
                         f"(a broken install?): {exc.strerror}") from exc

"""Arguments and argument helpers several `mailbot` commands share."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TypeAlias

from ..config import Config
from ..errors import UsageError
from ..store import Store, resolve_store_url

# What `add_subparsers()` returns; each command module's `register` adds its parsers to it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_config_and_store(parser: argparse.ArgumentParser, *, config_required: bool = True) -> None:
    """`--config FILE` and `--store URL` (a SQLAlchemy URL that overrides the config's store).

    The daemon side's commands need a configuration; the `store` and `verify` commands a
    clerk runs at a terminal (`config_required=False`) can do without one.
    """
    parser.add_argument("--config", metavar="FILE", required=config_required,
                        help="mailbot configuration (TOML)"
                        + ("" if config_required else "; default: none, built-in settings"))
    parser.add_argument("--store", metavar="URL",
                        help="SQLAlchemy URL of the guarantee store (overrides the config's)")


def parse_date_arg(text: str, option: str) -> date:
    """A date given on the command line (ISO, `2026/07/01` or 和暦); a usage error names `option`."""
    from parsers.values import parse_date

    try:
        return parse_date(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def add_action(actions: Commands, name: str, help: str, func: Callable[..., int], *,
               config_required: bool = True) -> argparse.ArgumentParser:
    """One ACTION of a command group (`mailbot store import`, `mailbot outbox list`): its
    parser with `--config`/`--store`, run by `func`; the caller adds the action's own
    arguments."""
    parser = actions.add_parser(name, help=help)
    add_config_and_store(parser, config_required=config_required)
    parser.set_defaults(func=func)
    return parser


def add_list(actions: Commands, what: str, states: Sequence[str],
             func: Callable[..., int]) -> argparse.ArgumentParser:
    """The `list` action of a group: rows oldest first, `--state` one of `states`, `--json`."""
    listing = add_action(actions, "list", f"list {what}, oldest first", func)
    listing.add_argument("--state", choices=states, help=f"only {what} in this state")
    listing.add_argument("--json", action="store_true", help=f"a JSON array of {what}")
    return listing


def existing_file(name: str) -> Path:
    """`name` as a file to read; a usage error says whether it is missing or a folder (the
    commands read files, not folders: give the shell a pattern such as ``DIR/*.eml``)."""
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"{name} is a directory: name the files in it (e.g. {name}/*.eml)")
    if not path.is_file():
        raise UsageError(f"no such file: {name}")
    return path


MAX_ROW_ID = 2**63 - 1  # the largest id a SQLite or PostgreSQL BIGINT holds


def row_id(text: str) -> int:
    """A row id argument (outbox, submissions, quarantine): a whole number from 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a row id (a whole number)") from None
    if not 1 <= value <= MAX_ROW_ID:
        raise argparse.ArgumentTypeError(f"{text} is not a row id (from 1 to {MAX_ROW_ID})")
    return value


def open_store(args: argparse.Namespace, config: Config) -> Store:
    """The store of `--store` or the config's `[store] url`, its secret found with the
    config's `[store] secret_file` (mailbot/store/secret.py gives the order)."""
    return Store.open(resolve_store_url(args.store, config.store_url),
                      secret_file=config.secret_file)

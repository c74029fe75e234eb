"""The `mailbot` console script: argument parsing and dispatch to one module per command.

Exit codes (DESIGN.md §4): 0 ok, 1 a problem found in the input, 2 usage or config error.
Errors go to stderr as one sentence naming the file or field.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .errors import UsageError


def _add_parse(commands: argparse._SubParsersAction) -> None:
    parse = commands.add_parser(
        "parse", help="read guarantee numbers and keys from .eml or PDF files"
    )
    parse.add_argument("paths", nargs="+", metavar="PATH", help="an .eml message or a PDF")
    parse.add_argument("--json", action="store_true", help="one JSON object per PATH and line")
    parse.add_argument(
        "--workers", type=int, default=2, help="PDF reader processes (default 2; 0 = inline)"
    )
    parse.add_argument(
        "--timeout", type=float, default=None, help="seconds allowed per PDF (default 20)"
    )

    def run(args: argparse.Namespace) -> int:
        from .parse_cmd import run_parse

        return run_parse(args.paths, as_json=args.json, workers=args.workers,
                         timeout=args.timeout)

    parse.set_defaults(func=run)


def _add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole job on sample mails: intake, decisions, replies"
    )
    demo.add_argument(
        "--out", default="demo-out", help="folder for the sample mails (default ./demo-out)"
    )

    def run(args: argparse.Namespace) -> int:
        from .demo import run_demo

        return run_demo(args.out)

    demo.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    from . import (
        config_cmd,
        intake_cmd,
        outbox_cmd,
        store_cmd,
        submissions_cmd,
        verify_cmd,
    )

    parser = argparse.ArgumentParser(
        prog="mailbot",
        description="E-mail intake and submission for electronic construction guarantees.",
    )
    parser.add_argument("--version", action="version", version=f"mailbot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_parse(commands)
    _add_demo(commands)
    store_cmd.register(commands)
    verify_cmd.register(commands)
    config_cmd.register(commands)
    intake_cmd.register(commands)
    outbox_cmd.register(commands)
    submissions_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="mailbot: %(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"mailbot {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mailbot {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

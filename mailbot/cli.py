"""The `mailbot` console script: argument parsing and dispatch to one module per command.

Exit codes (DESIGN.md §4): 0 ok, 1 a problem found in the input, 2 usage or config error.
Errors go to stderr as one sentence naming the file or field.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailbot",
        description="E-mail intake and submission for electronic construction guarantees.",
    )
    parser.add_argument("--version", action="version", version=f"mailbot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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

    demo = commands.add_parser("demo", help="generate sample mails and read them")
    demo.add_argument(
        "--out", default="demo-out", help="folder for the sample mails (default ./demo-out)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "parse":
            from .parse_cmd import run_parse

            return run_parse(args.paths, as_json=args.json, workers=args.workers,
                             timeout=args.timeout)
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(args.out)
    except UsageError as exc:
        print(f"mailbot {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mailbot {args.command}: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())

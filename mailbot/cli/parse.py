"""`mailbot parse`: read sources and print what they hold (JSON lines or a readable table).

The JSON form is a contract (docs/contracts.md): exactly one object per PATH, one per line, in
input order. Lossy decodes and other warnings go to stderr, naming the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import TextIO

from parsers import InlineRunner, Limits, ParseResult, PdfPool, Reader

from ..errors import UsageError
from .options import Commands, existing_file


def register(commands: Commands) -> None:
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
    parse.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_parse(args.paths, as_json=args.json, workers=args.workers, timeout=args.timeout)


def run_parse(
    paths: list[str], *, as_json: bool, workers: int = 2, timeout: float | None = None
) -> int:
    for path in paths:
        existing_file(path)
    if workers < 0:
        raise UsageError("--workers must be 0 or more")
    limits = Limits() if timeout is None else replace(Limits(), pdf_timeout_s=timeout)
    runner = PdfPool(workers, limits) if workers else InlineRunner(limits)
    found_problem = False
    progress = sys.stderr.isatty() and len(paths) > 20
    try:
        reader = Reader(runner, limits)
        for index, result in enumerate(reader.read_many(paths), 1):
            found_problem |= bool(result.problems)
            for warning in result.warnings:
                print(f"{result.source}: warning: {warning}", file=sys.stderr)
            if as_json:
                print(json.dumps(result.to_json_obj(), ensure_ascii=False), flush=True)
            else:
                print_table(result, sys.stdout)
            if progress:
                print(f"\r{index}/{len(paths)} read", end="", file=sys.stderr, flush=True)
    finally:
        runner.close()
        if progress:
            print(file=sys.stderr)
    return 1 if found_problem else 0


def print_table(result: ParseResult, out: TextIO) -> None:
    out.write(f"{result.source}\n")
    for notice in result.notices:
        out.write(
            f"  notice   {notice.guarantee_number:<16} {notice.auth_key:<14} "
            f"{notice.kind or '-':<8} {notice.project_name or '-'}  [{notice.origin}]\n"
        )
    for problem in result.problems:
        out.write(f"  problem  {problem.code:<22} {problem.origin}: {problem.detail}\n")

"""`mailbot demo`: the subcommand wiring of the self-contained demo in `mailbot.demo`."""

from __future__ import annotations

import argparse

from .options import Commands


def register(commands: Commands) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole job on sample mails: intake, decisions, replies"
    )
    demo.add_argument(
        "--out", default="demo-out", help="folder for the sample mails (default ./demo-out)"
    )
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(args.out)

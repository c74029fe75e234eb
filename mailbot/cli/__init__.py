"""The `mailbot` console script: argument parsing and dispatch to one module per command.

Each command group lives in its own module here (`parse`, `demo`, `store`, `verify`,
`config`, `intake`, `outbox`, `submissions`, `init`, `migrate`, `purge`, `web`), each with a
`register(commands)` that adds its subparsers; options several commands share are in `options`.

Exit codes (docs/contracts.md): 0 ok, 1 a problem found in the input, 2 usage or config error.
Errors go to stderr as one sentence naming the file or field.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__, logs
from ..errors import UsageError

# Drivers of optional parts, by the extra (pyproject.toml) that installs them.
OPTIONAL_MODULES = {"psycopg": "postgresql"}


def build_parser() -> argparse.ArgumentParser:
    from . import (
        config,
        demo,
        init,
        intake,
        migrate,
        outbox,
        parse,
        purge,
        store,
        submissions,
        verify,
        web,
    )

    parser = argparse.ArgumentParser(
        prog="mailbot",
        description="E-mail intake and submission for electronic construction guarantees.",
    )
    parser.add_argument("--version", action="version", version=f"mailbot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parse.register(commands)
    demo.register(commands)
    store.register(commands)
    verify.register(commands)
    config.register(commands)
    intake.register(commands)
    outbox.register(commands)
    submissions.register(commands)
    init.register(commands)
    migrate.register(commands)
    purge.register(commands)
    web.register(commands)
    logs.add_options(parser)  # after the subcommands: every one of them takes the options too
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A command may raise the default level (`mailbot run` logs at INFO); --log-level wins.
    logs.configure(args.log_format, args.log_level or getattr(args, "default_log_level",
                                                                "WARNING"))
    try:
        code: int = args.func(args)
        return code
    except UsageError as exc:
        print(f"mailbot {args.command}: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = OPTIONAL_MODULES.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"mailbot {args.command}: {exc.name} is not installed: "
              f"pip install 'mailbot[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mailbot {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`mailbot outbox list | head`): stop quietly,
        # as a command killed by SIGPIPE would; stdout goes to /dev/null so that the
        # interpreter's last flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141

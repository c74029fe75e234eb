"""`mailbot purge [--dry-run]`: remove raw and rendered mail older than `[retention] raw_days`
(`mailbot/retention.py`), printing each file and body removed, then the counts."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from ..config import load_config
from ..retention import purge
from .options import Commands, add_config_and_store, open_store


def register(commands: Commands) -> None:
    cmd = commands.add_parser("purge", help="remove raw mail and sent mail bodies older than "
                                            "[retention] raw_days (keys in clear)")
    add_config_and_store(cmd)
    cmd.add_argument("--dry-run", action="store_true",
                     help="list what would be removed, remove nothing")
    cmd.set_defaults(func=run_purge)


def run_purge(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = open_store(args, config)
    try:
        report = purge(config, store, datetime.now(UTC), dry_run=args.dry_run)
    finally:
        store.close()
    for line in report.lines():
        print(line)
    return 0

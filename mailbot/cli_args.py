"""Arguments several `mailbot` commands share."""

from __future__ import annotations

import argparse


def add_config_and_store(parser: argparse.ArgumentParser) -> None:
    """`--config FILE` (required) and `--store URL` (overrides the config's store)."""
    parser.add_argument("--config", metavar="FILE", required=True, help="mailbot.toml")
    parser.add_argument("--store", metavar="URL", help="override the config's store URL")

"""Which database a command uses (docs/contracts.md): --store, config, env, then ./mailbot.db."""

from __future__ import annotations

import os

DEFAULT_URL = "sqlite:///mailbot.db"


def resolve_store_url(cli_url: str | None = None, config_url: str | None = None) -> str:
    return cli_url or config_url or os.environ.get("MAILBOT_STORE_URL") or DEFAULT_URL

"""docs/configuration.md names every key the configuration reads (no key undocumented)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mailbot.config import (
    CheckConfig,
    Config,
    ContractorConfig,
    DigestConfig,
    MailboxConfig,
    MetricsConfig,
    ProjectRule,
    RetentionConfig,
    Route,
    SmtpConfig,
    SubmissionRule,
    WindowConfig,
)
from mailbot.config.auth import AUTH_KEYS
from mailbot.config.issuers import AMOUNT_KEYS, ISSUER_KEYS, THROTTLE_KEYS
from mailbot.config.reader import Key
from mailbot.config.web import WebConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
SECTIONS = (Config, MailboxConfig, Route, SmtpConfig, WindowConfig, DigestConfig,
            ContractorConfig, SubmissionRule, ProjectRule, MetricsConfig, CheckConfig,
            RetentionConfig, WebConfig)


def _names(key: Key, field: str) -> list[str]:
    return [(key.toml or field).split(".")[-1], *key.also]


def test_every_config_key_is_in_the_reference():
    declared: set[str] = set()
    for cls in SECTIONS:
        for field in dataclasses.fields(cls):
            key = field.metadata.get("key")
            if key is not None:
                declared.update(_names(key, field.name))
    for table in (ISSUER_KEYS, AMOUNT_KEYS, THROTTLE_KEYS, AUTH_KEYS):
        for field, key in table.items():
            declared.update(_names(key, field))
    declared -= {"issuers", "mailboxes", "routes", "projects", "contractor", "password"}
    assert len(declared) > 80  # the walk found the keys
    text = DOC.read_text(encoding="utf-8")
    # a key as `name` or `[table] name`, a table as `[name]` or `[….name]`
    missing = sorted(name for name in declared
                     if not any(form in text for form in (f"`{name}`", f" {name}`",
                                                          f"[{name}]", f".{name}]")))
    assert missing == []

"""The admin's configuration file (TOML) loaded into typed objects.

`[store] url`, `[spool] dir`, one `[issuers.ID]` table per issuer (verification policy,
staff, template set, departments by kind), `[[mailboxes]]` (IMAP inboxes and SMTP/LMTP
listeners) and `[[routes]]`. Errors raise `ConfigError` naming the file, the key path and
the reason (and the line when the TOML parser gives one). Secrets never live here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mailbot.auth import AuthSettings, Requirement
from mailbot.verify.policy import IssuerPolicy

from .auth import read_auth, read_overrides
from .check import CheckConfig
from .cluster import ClusterConfig
from .contractor import (
    ContractorConfig,
    ProjectRule,
    SubmissionRule,
    read_contractor,
    read_project,
    read_submission,
)
from .intake import MailboxConfig, Route, read_mailbox, read_route
from .issuers import read_issuer
from .metrics import MetricsConfig, read_metrics
from .outbound import DigestConfig, SmtpConfig, WindowConfig
from .reader import ConfigError, Item, TomlReader, build, key
from .retention import RetentionConfig
from .secrets import Secret
from .values import file_path, section, text
from .web import WebConfig

__all__ = [
    "CheckConfig",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "ContractorConfig",
    "ProjectRule",
    "Secret",
    "SubmissionRule",
    "DigestConfig",
    "MailboxConfig",
    "MetricsConfig",
    "RetentionConfig",
    "Route",
    "SmtpConfig",
    "WindowConfig",
    "load_config",
]


def _issuers(item: Item) -> dict[str, IssuerPolicy]:
    table = item.r.table(item.data, item.key, optional=True)
    return {k: read_issuer(item.r, item.r.table(table, k, "issuers"), f"issuers.{k}")
            for k in table}


def _submissions(item: Item) -> dict[str, SubmissionRule]:
    item.value("issuers")  # every [issuers.ID] is a table
    table = item.r.table(item.data, item.key, optional=True)
    return {k: read_submission(item.r, item.r.table(table[k], "submission", f"issuers.{k}"), k)
            for k in table if "submission" in table[k]}


def _mailboxes(item: Item) -> tuple[MailboxConfig, ...]:
    issuers = set(item.value("issuers"))
    mailboxes = tuple(read_mailbox(item.r, data, i, issuers)
                      for i, data in enumerate(item.r.tables(item.data, item.key)))
    names = [m.name for m in mailboxes]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise item.fail("two mailboxes have this name", f"mailboxes.{duplicate}")
    return mailboxes


def _routes(item: Item) -> tuple[Route, ...]:
    names = {m.name for m in item.value("mailboxes")}
    issuers = set(item.value("issuers"))
    return tuple(read_route(item.r, data, i, names, issuers)
                 for i, data in enumerate(item.r.tables(item.data, item.key)))


def _contractor(item: Item) -> ContractorConfig | None:
    table = item.r.table(item.data, item.key, optional=True)
    contractor = read_contractor(item.r, table) if table else None
    queue = next((m.name for m in item.value("mailboxes") if m.role == "contractor"), None)
    if contractor is None and queue is not None:
        raise item.fail(f"mailbox {queue!r} has the contractor role: a [contractor] table "
                        "must say who submits (name, from, staff)")
    return contractor


def _projects(item: Item) -> tuple[ProjectRule, ...]:
    issuers = set(item.value("issuers"))
    return tuple(read_project(item.r, data, i, issuers)
                 for i, data in enumerate(item.r.tables(item.data, item.key)))


@dataclass(frozen=True)
class Config:
    path: Path | None = None  # the file read; relative paths in it are relative to its folder
    # repr=False: the URL may carry the database password
    store_url: str | None = key(text, "store.url", default=None, repr=False)
    # where the key-hashing secret is (mailbot/store/secret.py: after the environment)
    secret_file: Path | None = key(file_path, "store.secret_file", default=None)
    spool_dir: Path = key(file_path, "spool.dir", default=Path("spool"))
    issuers: dict[str, IssuerPolicy] = key(_issuers, default_factory=dict)
    mailboxes: tuple[MailboxConfig, ...] = key(_mailboxes, default=())
    routes: tuple[Route, ...] = key(_routes, default=())
    smtp: SmtpConfig = key(section(SmtpConfig), default_factory=SmtpConfig)
    send_window: WindowConfig = key(section(WindowConfig), default_factory=WindowConfig)
    digest: DigestConfig = key(section(DigestConfig), default_factory=DigestConfig)
    metrics: MetricsConfig = key(read_metrics, default_factory=MetricsConfig)
    web: WebConfig = key(section(WebConfig), default_factory=WebConfig)
    # searched before the bundled templates/
    template_dir: Path | None = key(file_path, "templates.dir", default=None)
    contractor: ContractorConfig | None = key(_contractor, default=None)
    # by issuer key, from each [issuers.ID.submission]
    submissions: dict[str, SubmissionRule] = key(_submissions, "issuers", default_factory=dict)
    projects: tuple[ProjectRule, ...] = key(_projects, default=())
    check: CheckConfig = key(section(CheckConfig), default_factory=CheckConfig)
    retention: RetentionConfig = key(section(RetentionConfig), default_factory=RetentionConfig)
    cluster: ClusterConfig = key(section(ClusterConfig), default_factory=ClusterConfig)
    auth: AuthSettings = key(read_auth, default_factory=AuthSettings)
    # (issuer ID, "issuer" | "contractor") → requirement: [issuers.ID] auth and
    # [issuers.ID.submission] auth
    auth_overrides: dict[tuple[str, str], Requirement] = key(
        read_overrides, "issuers", default_factory=dict)

    def auth_requirement(self, issuer: str | None, side: str) -> Requirement:
        """What counts as authenticated for mail about `issuer` (its ID or any of its
        names): on the issuer side (`side="issuer"`) the contractors' mail to it
        (`[issuers.ID] auth`), on the contractor side (`side="contractor"`) that issuer's
        answers (`[issuers.ID.submission] auth`); else `[auth] require`."""
        if side not in ("issuer", "contractor"):
            raise ValueError(f"side must be 'issuer' or 'contractor', not {side!r}")
        if issuer is not None and issuer not in self.issuers:
            issuer = next((k for k, p in self.issuers.items() if issuer in p.names), issuer)
        return self.auth_overrides.get((issuer or "", side), self.auth.require)

    def issuer(self, name: str) -> IssuerPolicy:
        """The policy of issuer `name` (its ID or any of its names); defaults otherwise."""
        if name in self.issuers:
            return self.issuers[name]
        for policy in self.issuers.values():
            if name in policy.names:
                return policy
        return IssuerPolicy(name=name)

    def secrets(self) -> list[Secret]:
        """Every mail password the configuration names (mailboxes, the relay)."""
        found = [m.password for m in self.mailboxes] + [self.smtp.password]
        return [s for s in found if s is not None]

    def reveal_secrets(self) -> None:
        """Read every password now: the first one that cannot be read raises ConfigError."""
        for secret in self.secrets():
            secret.reveal()

    def mailbox(self, name: str) -> MailboxConfig:
        for mailbox in self.mailboxes:
            if mailbox.name == name:
                return mailbox
        raise ConfigError(f"{self.path}: no mailbox named {name!r}")


def load_config(path: str | Path | None) -> Config:
    if path is None:
        return Config()
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {file}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    return build(TomlReader(file), Config, data, "", given={"path": file})

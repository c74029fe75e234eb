"""The admin's configuration file (TOML) loaded into typed objects.

`[store] url`, `[spool] dir`, one `[issuers.ID]` table per issuer (verification policy,
staff, template set, departments by kind), `[[mailboxes]]` (IMAP inboxes and SMTP/LMTP
listeners) and `[[routes]]`. Errors raise `ConfigError` naming the file, the key path and
the reason (and the line when the TOML parser gives one). Secrets never live here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mailbot.verify.policy import IssuerPolicy

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
from .outbound import (
    DigestConfig,
    SmtpConfig,
    WindowConfig,
    read_digest,
    read_smtp,
    read_window,
)
from .reader import ConfigError, TomlReader

__all__ = [
    "Config",
    "ConfigError",
    "ContractorConfig",
    "ProjectRule",
    "SubmissionRule",
    "DigestConfig",
    "MailboxConfig",
    "Route",
    "SmtpConfig",
    "WindowConfig",
    "load_config",
]


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    store_url: str | None = None
    spool_dir: Path = Path("spool")
    issuers: dict[str, IssuerPolicy] = field(default_factory=dict)
    mailboxes: tuple[MailboxConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    send_window: WindowConfig = field(default_factory=WindowConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    template_dir: Path | None = None  # searched before the bundled templates/
    contractor: ContractorConfig | None = None
    submissions: dict[str, SubmissionRule] = field(default_factory=dict)  # by issuer key
    projects: tuple[ProjectRule, ...] = ()

    def issuer(self, name: str) -> IssuerPolicy:
        """The policy of issuer `name` (its ID or any of its names); defaults otherwise."""
        if name in self.issuers:
            return self.issuers[name]
        for policy in self.issuers.values():
            if name in policy.names:
                return policy
        return IssuerPolicy(name=name)

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
    r = TomlReader(file)
    r.no_extra(data, ("store", "spool", "issuers", "mailboxes", "routes", "smtp",
                      "send_window", "digest", "templates", "contractor", "projects"), "")
    store = r.table(data, "store", optional=True)
    r.no_extra(store, ("url",), "store")
    spool = r.table(data, "spool", optional=True)
    r.no_extra(spool, ("dir",), "spool")
    issuers_raw = r.table(data, "issuers", optional=True)
    issuers = {
        key: read_issuer(r, r.table(issuers_raw, key, "issuers"), f"issuers.{key}")
        for key in issuers_raw
    }
    mailboxes = tuple(
        read_mailbox(r, item, i, set(issuers)) for i, item in enumerate(r.tables(data, "mailboxes"))
    )
    names = [m.name for m in mailboxes]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise r.fail(f"mailboxes.{duplicate}", "two mailboxes have this name")
    routes = tuple(
        read_route(r, item, i, set(names), set(issuers))
        for i, item in enumerate(r.tables(data, "routes"))
    )
    spool_dir = Path(r.string(spool, "dir", "spool", optional=True, default="spool") or "spool")
    if not spool_dir.is_absolute():
        spool_dir = file.parent / spool_dir
    submissions = {
        key: read_submission(r, r.table(issuers_raw[key], "submission", f"issuers.{key}"), key)
        for key in issuers_raw
        if isinstance(issuers_raw[key], dict) and "submission" in issuers_raw[key]
    }
    contractor_raw = r.table(data, "contractor", optional=True)
    contractor = read_contractor(r, contractor_raw) if contractor_raw else None
    if contractor is None and any(m.role == "contractor" for m in mailboxes):
        name = next(m.name for m in mailboxes if m.role == "contractor")
        raise r.fail("contractor", f"mailbox {name!r} has the contractor role: a [contractor] "
                     "table must say who submits (name, from, staff)")
    projects = tuple(read_project(r, item, i, set(issuers))
                     for i, item in enumerate(r.tables(data, "projects")))
    templates = r.table(data, "templates", optional=True)
    r.no_extra(templates, ("dir",), "templates")
    template_dir = r.string(templates, "dir", "templates", optional=True)
    return Config(
        path=file,
        store_url=r.string(store, "url", "store", optional=True),
        spool_dir=spool_dir,
        issuers=issuers,
        mailboxes=mailboxes,
        routes=routes,
        smtp=read_smtp(r, r.table(data, "smtp", optional=True)),
        send_window=read_window(r, r.table(data, "send_window", optional=True)),
        digest=read_digest(r, r.table(data, "digest", optional=True)),
        template_dir=(file.parent / template_dir) if template_dir else None,
        contractor=contractor,
        submissions=submissions,
        projects=projects,
    )

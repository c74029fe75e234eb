"""`[[mailboxes]]`, `[[routes]]` and `[spool]`: where mail comes from and how it is routed.

A mailbox is an IMAP inbox mailbot watches, or an SMTP/LMTP listener the MTA delivers to;
its role is `issuer` (verify and answer) or `contractor` (the notification queue). Routes
are an ordered list: each matches on mailbox, To/Cc, sender domain, subject pattern and
attachment-name glob, and sets issuer, department, template set, staff to notify and the
folder to move to; `stop = true` ends the list. Passwords come from an environment
variable or a file named here, never from the file itself (DESIGN.md §7).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from .reader import TomlReader

MAILBOX_KEYS = (
    "name", "role", "issuer", "kind", "host", "port", "tls", "user", "password", "password_env",
    "password_file", "folder", "done_folder", "review_folder", "action", "keyword",
    "poll_seconds", "idle_renew_seconds", "since", "reply_to_backfill", "listen", "addresses",
    "max_message_bytes",
)
ROUTE_KEYS = (
    "name", "mailbox", "to", "sender_domain", "subject", "attachment", "issuer", "department",
    "template_set", "notify", "folder", "stop",
)


@dataclass(frozen=True)
class MailboxConfig:
    name: str
    role: str  # "issuer" | "contractor"
    kind: str  # "imap" | "smtp" | "lmtp"
    issuer: str | None = None
    # IMAP
    host: str = ""
    port: int = 0
    tls: str = "ssl"
    user: str = ""
    password: str = field(default="", repr=False)
    folder: str = "INBOX"
    done_folder: str = "電子保証/処理済"
    review_folder: str = "電子保証/要確認"
    action: str = "move"  # "move" | "keyword" | "none"
    keyword: str = "$MailbotDone"
    poll_seconds: float = 60
    idle_renew_seconds: float = 540
    since: date | None = None
    reply_to_backfill: bool = False
    # SMTP / LMTP listener
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    addresses: tuple[str, ...] = ()
    max_message_bytes: int = 50 * 1024 * 1024


@dataclass(frozen=True)
class Route:
    name: str
    mailbox: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    sender_domain: tuple[str, ...] = ()
    subject: re.Pattern[str] | None = None
    attachment: tuple[str, ...] = ()
    issuer: str | None = None
    department: str | None = None
    template_set: str | None = None
    notify: tuple[str, ...] = ()
    folder: str | None = None
    stop: bool = False


def read_mailbox(r: TomlReader, data: dict[str, Any], index: int, issuers: set[str]
                 ) -> MailboxConfig:
    where = f"mailboxes.{index}"
    r.no_extra(data, MAILBOX_KEYS, where)
    name = r.string(data, "name", where) or ""
    where = f"mailboxes.{name}"
    role = r.choice(data, "role", where, ("issuer", "contractor"))
    kind = r.choice(data, "kind", where, ("imap", "smtp", "lmtp"))
    issuer = r.string(data, "issuer", where, optional=True)
    if issuer is not None and issuer not in issuers:
        raise r.fail(f"{where}.issuer", f"no [issuers.{issuer}] table")
    if role == "issuer" and issuer is None:
        raise r.fail(f"{where}.issuer", "an issuer mailbox must name its issuer")
    common = dict(name=name, role=role, kind=kind, issuer=issuer)
    if kind == "imap":
        since = data.get("since")
        if since is not None and not isinstance(since, date):
            raise r.fail(f"{where}.since", "must be a TOML date (2026-01-01)")
        tls = r.choice(data, "tls", where, ("ssl", "starttls", "none"))
        port = data.get("port", 993 if tls == "ssl" else 143)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise r.fail(f"{where}.port", "must be a TCP port number")
        return MailboxConfig(
            **common,
            host=r.string(data, "host", where) or "",
            port=port,
            tls=tls,
            user=r.string(data, "user", where) or "",
            password=_password(r, data, where),
            folder=r.string(data, "folder", where, optional=True, default="INBOX") or "INBOX",
            done_folder=r.string(data, "done_folder", where, True, "電子保証/処理済") or "",
            review_folder=r.string(data, "review_folder", where, True, "電子保証/要確認") or "",
            action=r.choice(data, "action", where, ("move", "keyword", "none")),
            keyword=_keyword(r, data, where),
            poll_seconds=r.count(data, "poll_seconds", where, 60),
            idle_renew_seconds=min(r.count(data, "idle_renew_seconds", where, 540), 600),
            since=since,
            reply_to_backfill=r.boolean(data, "reply_to_backfill", where, False),
        )
    listen = r.string(data, "listen", where) or ""
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")  # [::1]:2526
    if not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise r.fail(f"{where}.listen", f"must be HOST:PORT with a port below 65536, "
                     f"not {listen!r}")
    return MailboxConfig(
        **common,
        listen_host=host,
        listen_port=int(port_text),
        addresses=tuple(a.lower() for a in r.strings(data, "addresses", where) or ()),
        max_message_bytes=r.count(data, "max_message_bytes", where, 50 * 1024 * 1024),
    )


_ATOM = re.compile(r'\\?[^\x00-\x20\x7f-\U0010ffff(){%*"\\\]]+')


def _keyword(r: TomlReader, data: dict[str, Any], where: str) -> str:
    keyword = r.string(data, "keyword", where, True, "$MailbotDone") or ""
    if not _ATOM.fullmatch(keyword):
        raise r.fail(f"{where}.keyword", f"{keyword!r} is not a valid IMAP keyword (an atom: "
                     "ASCII, no spaces or brackets)")
    return keyword


def _password(r: TomlReader, data: dict[str, Any], where: str) -> str:
    if "password" in data:
        raise r.fail(f"{where}.password", "passwords never go in the file: use password_env "
                     "or password_file")
    env = r.string(data, "password_env", where, optional=True)
    file = r.string(data, "password_file", where, optional=True)
    if env:
        value = os.environ.get(env)
        if value is None:
            raise r.fail(f"{where}.password_env", f"environment variable {env} is not set")
        return value
    if file:
        path = Path(file) if Path(file).is_absolute() else r.file.parent / file
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise r.fail(f"{where}.password_file", f"cannot read {file}: {exc.strerror}"
                         ) from None
    raise r.fail(where, "needs password_env or password_file")


def read_route(r: TomlReader, data: dict[str, Any], index: int, mailboxes: set[str],
               issuers: set[str]) -> Route:
    name = str(data.get("name") or f"route {index + 1}")
    where = f"routes.{name}"
    r.no_extra(data, ROUTE_KEYS, where)
    for mailbox in r.strings(data, "mailbox", where) or ():
        if mailbox not in mailboxes:
            raise r.fail(f"{where}.mailbox", f"no mailbox named {mailbox!r}")
    issuer = r.string(data, "issuer", where, optional=True)
    if issuer is not None and issuer not in issuers:
        raise r.fail(f"{where}.issuer", f"no [issuers.{issuer}] table")
    pattern = r.string(data, "subject", where, optional=True)
    try:
        subject = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise r.fail(f"{where}.subject", f"not a valid regular expression ({exc})") from None
    return Route(
        name=name,
        mailbox=r.strings(data, "mailbox", where) or (),
        to=tuple(a.lower() for a in r.strings(data, "to", where) or ()),
        sender_domain=tuple(d.lower() for d in r.strings(data, "sender_domain", where) or ()),
        subject=subject,
        attachment=r.strings(data, "attachment", where) or (),
        issuer=issuer,
        department=r.string(data, "department", where, optional=True),
        template_set=r.string(data, "template_set", where, optional=True),
        notify=r.strings(data, "notify", where) or (),
        folder=r.string(data, "folder", where, optional=True),
        stop=r.boolean(data, "stop", where, False),
    )

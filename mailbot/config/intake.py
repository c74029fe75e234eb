"""`[[mailboxes]]` and `[[routes]]`: where mail comes from and how it is routed.

A mailbox is an IMAP inbox mailbot watches, or an SMTP/LMTP listener the MTA delivers to;
its role is `issuer` (verify and answer) or `contractor` (the notification queue). Routes
are an ordered list: each matches on mailbox, To/Cc, sender domain, subject pattern and
attachment-name glob, and sets issuer, department, template set, staff to notify and the
folder to move to; `stop = true` ends the list. Passwords come from an environment
variable or a file named here, never from the file itself (docs/security.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from mailbot.protocols import is_imap_keyword

from .reader import Item, TomlReader, build, check_keys, key, read_one
from .secrets import Secret
from .values import (
    boolean,
    choice,
    count,
    known_issuer,
    lower_strings,
    own_addresses,
    port,
    recipients,
    regex,
    secret,
    strings,
    text,
    tls_mode,
    toml_date,
)


def _imap(item: Item) -> bool:
    return bool(item.value("kind") == "imap")


def _listener(item: Item) -> bool:
    return not _imap(item)


def _issuer(item: Item) -> str | None:
    issuer = known_issuer(item)
    if item.value("role") == "issuer" and issuer is None:
        raise item.fail("an issuer mailbox must name its issuer")
    return issuer


def _keyword(item: Item) -> str:
    keyword = str(text(item))
    if not is_imap_keyword(keyword):
        raise item.fail(f"{keyword!r} is not a valid IMAP keyword (an atom: ASCII, no spaces "
                        "or brackets)")
    return keyword


def _listen(item: Item) -> tuple[str, int]:
    listen = str(text(item))
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")  # [::1]:2526
    if not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise item.fail(f"must be HOST:PORT with a port below 65536, not {listen!r}")
    return host, int(port_text)


def _known_mailboxes(item: Item) -> tuple[str, ...]:
    names: tuple[str, ...] = strings(item)
    for mailbox in names:
        if mailbox not in item.context["mailboxes"]:
            raise item.fail(f"no mailbox named {mailbox!r}")
    return names


@dataclass(frozen=True)
class MailboxConfig:
    name: str = key(text)
    role: str = key(choice("issuer", "contractor"))  # "issuer" | "contractor"
    kind: str = key(choice("imap", "smtp", "lmtp"))  # "imap" | "smtp" | "lmtp"
    issuer: str | None = key(_issuer, default=None)
    # IMAP
    host: str = key(text, when=_imap, required=True, default="")
    port: int = key(port({"ssl": 993}, 143), when=_imap, default=0)
    tls: str = key(tls_mode("ssl"), when=_imap, default="ssl")
    user: str = key(text, when=_imap, required=True, default="")
    password: Secret | None = key(secret, also=("password_env", "password_file"), when=_imap,
                                  required=True, default=None)
    folder: str = key(text, when=_imap, default="INBOX")
    done_folder: str = key(text, when=_imap, default="電子保証/処理済")
    review_folder: str = key(text, when=_imap, default="電子保証/要確認")
    action: str = key(choice("move", "keyword", "none"), when=_imap, default="move")
    keyword: str = key(_keyword, when=_imap, default="$MailbotDone")
    poll_seconds: float = key(count, when=_imap, default=60)
    idle_renew_seconds: float = key(lambda item: min(count(item), 600), when=_imap, default=540)
    since: date | None = key(toml_date("2026-01-01"), when=_imap, default=None)
    reply_to_backfill: bool = key(boolean, when=_imap, default=False)
    # SMTP / LMTP listener
    listen_host: str = key(lambda item: _listen(item)[0], "listen", when=_listener,
                           required=True, default="127.0.0.1")
    listen_port: int = key(lambda item: _listen(item)[1], "listen", when=_listener, default=0)
    addresses: tuple[str, ...] = key(own_addresses, when=_listener, default=())
    max_message_bytes: int = key(count, when=_listener, default=50 * 1024 * 1024)


@dataclass(frozen=True)
class Route:
    name: str = key(text)
    mailbox: tuple[str, ...] = key(_known_mailboxes, default=())
    to: tuple[str, ...] = key(lower_strings, default=())
    sender_domain: tuple[str, ...] = key(lower_strings, default=())
    subject: re.Pattern[str] | None = key(regex, default=None)
    attachment: tuple[str, ...] = key(strings, default=())
    issuer: str | None = key(known_issuer, default=None)
    department: str | None = key(text, default=None)
    template_set: str | None = key(text, default=None)
    notify: tuple[str, ...] = key(recipients, default=())  # they get a digest of what matched
    folder: str | None = key(text, default=None)
    stop: bool = key(boolean, default=False)


def read_mailbox(r: TomlReader, data: dict[str, Any], index: int, issuers: set[str]
                 ) -> MailboxConfig:
    where = f"mailboxes.{index}"
    # The key path names the mailbox: unknown keys and the name itself are checked first.
    check_keys(r, MailboxConfig, data, where)
    name = read_one(r, text, data, "name", where)
    return build(r, MailboxConfig, data, f"mailboxes.{name}", given={"name": name},
                 context={"issuers": issuers})


def read_route(r: TomlReader, data: dict[str, Any], index: int, mailboxes: set[str],
               issuers: set[str]) -> Route:
    name = str(data.get("name") or f"route {index + 1}")
    return build(r, Route, data, f"routes.{name}", given={"name": name},
                 context={"mailboxes": mailboxes, "issuers": issuers})

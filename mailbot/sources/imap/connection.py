"""One IMAP connection of a watcher: settings, TLS and login, SELECT, folder names.

`ImapConnection.select()` (re)connects when needed, selects the watched folder and returns
the client with the folder's UIDVALIDITY; everything the watcher does afterwards on that
connection is tied to that UIDVALIDITY. `drop()` forgets a connection that may be dead
without a LOGOUT; `close()` logs out.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from datetime import date

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailbot.protocols import TLS_MODES

log = logging.getLogger("mailbot.sources.imap")


@dataclass(frozen=True)
class ImapSettings:
    name: str  # the mailbox's name in mailbot's config (ledger "mailbox" column)
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    tls: str = "ssl"  # "ssl" | "starttls" | "none"
    folder: str = "INBOX"
    batch: int = 100  # UIDs fetched per FETCH
    poll_seconds: float = 60  # polling fallback when the server has no IDLE
    idle_renew_seconds: float = 540  # IDLE renewed at least every 10 minutes (docs/reading.md)
    timeout_seconds: float = 30  # socket timeout
    since: date | None = None  # first sync only: SEARCH SINCE instead of ALL (backfill)
    reply_to_backfill: bool = False  # first sync: also reply to mail older than BACKFILL_AGE


class ImapConnection:
    """The watcher's connection and what it learnt on it (UIDVALIDITY, namespace, folders)."""

    def __init__(self, settings: ImapSettings) -> None:
        if settings.tls not in TLS_MODES:
            raise ValueError(f"mailbox {settings.name}: tls must be one of {', '.join(TLS_MODES)}")
        self.settings = settings
        self.client: IMAPClient | None = None
        self.uidvalidity: int | None = None  # of the folder selected on this connection
        self.uidnext = 0
        self.folders: set[str] = set()  # folders known to exist on this connection
        self._delimiter: str | None = None
        self._prefix = ""

    def select(self) -> tuple[IMAPClient, int]:
        """Select the folder (reconnecting once if the old connection died): the client and
        the folder's UIDVALIDITY."""
        reused = self.client is not None
        client = self.client or self._connect()
        try:
            info = client.select_folder(self.settings.folder)
        except (IMAPClientAbortError, OSError):
            self.drop()
            if not reused:
                raise
            client = self._connect()
            info = client.select_folder(self.settings.folder)
        if b"UIDVALIDITY" not in info:
            raise IMAPClientError(f"{self.settings.folder}: the server sent no UIDVALIDITY")
        uidvalidity = int(info[b"UIDVALIDITY"])
        self.uidvalidity = uidvalidity
        self.uidnext = int(info.get(b"UIDNEXT", 0) or 0)
        announced_since_select(client)  # the SELECT's own count is no news
        return client, uidvalidity

    def _connect(self) -> IMAPClient:
        s = self.settings
        context = ssl.create_default_context() if s.tls != "none" else None
        client = IMAPClient(s.host, s.port, ssl=s.tls == "ssl", ssl_context=context,
                            timeout=s.timeout_seconds)
        try:
            if s.tls == "starttls":
                client.starttls(context)
            client.login(s.user, s.password)
            self._delimiter, self._prefix = _personal_namespace(client)
        except BaseException:
            _shutdown(client)
            raise
        log.info("imap %s: connected to %s:%d", s.name, s.host, s.port,
                 extra={"mailbox": s.name})
        self.client = client
        self.folders.clear()
        return client

    def server_folder(self, folder: str) -> str:
        """Config folder names use '/' for hierarchy; write them with the server's delimiter."""
        name = folder.replace("/", self._delimiter) if self._delimiter else folder
        if self._prefix and name.upper() != "INBOX" and not name.startswith(self._prefix):
            name = self._prefix + name
        return name

    def drop(self) -> None:
        """Forget the connection without a LOGOUT (it may be dead; LOGOUT would wait)."""
        client, self.client, self.uidvalidity = self.client, None, None
        if client is not None:
            _shutdown(client)

    def close(self) -> None:
        client, self.client, self.uidvalidity = self.client, None, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            _shutdown(client)


def _personal_namespace(client: IMAPClient) -> tuple[str | None, str]:
    """(hierarchy delimiter, prefix) of the personal namespace."""
    if client.has_capability("NAMESPACE"):
        personal = client.namespace().personal
        if personal:
            prefix, delimiter = personal[0]
            return delimiter, prefix or ""
    listing = client.list_folders("", "")
    delimiter = listing[0][1] if listing else None
    return (delimiter.decode() if isinstance(delimiter, bytes) else delimiter), ""


def announced_since_select(client: IMAPClient) -> bool:
    """Did the server announce new mail (untagged EXISTS) in the answer to any command since
    the folder was selected? Forgets the announcements.

    A mail that arrives after the sync's SEARCH is announced in the answer to the next
    command (a FETCH, the NOOP before IDLE), not again in IDLE: unless we look, it waits
    for the next IDLE renewal. imaplib keeps every untagged response it reads, whoever
    asked, in `untagged_responses` (flushed by each SELECT)."""
    responses = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(responses, dict):
        return False
    return bool(responses.pop("EXISTS", None))


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:
        pass

"""IMAP source: one watcher per mailbox, copying its messages into the ledger (DESIGN.md §6, §8).

`ImapWatcher.sync_once()` selects the folder, compares its UIDVALIDITY with the ledger's
`mailbox_state`, fetches the messages above the recorded UID (everything — or everything
SINCE a date — on the first sync and after a UIDVALIDITY change) with `BODY.PEEK[]`, so
\\Seen is never set, and hands each to `Ledger.receive()`, which spools it durably. The
state advances only after a batch is in the ledger; a full re-sync records the new
UIDVALIDITY only when it has finished, so a crash in the middle repeats it and the ledger's
content hash makes the repetition harmless (nothing skipped, nothing duplicated). Every UID
is its own ledger row: a second byte-identical copy in the folder and a mail a clerk moved
back into it are recorded, decided (as a duplicate, or again) and moved like any other.

`apply_actions()` then carries out the mailbox actions the pipeline decided (`move:FOLDER`,
`keyword:KW`), always by UID and only for rows recorded under the current UIDVALIDITY.

`run()` loops: sync, wait for news in IDLE (or poll) unless the server announced new mail
while we were syncing, and on any connection problem record the error in the ledger,
reconnect with exponential backoff and log one line. Message contents are never logged.
"""

from __future__ import annotations

import logging
import re
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailbot.ledger import Entry, Ledger

log = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 2.0  # how often IDLE looks at `stop` and `wake()`
FETCH_BYTES = 32 * 1024 * 1024  # bodies fetched per FETCH command, at most (one big mail may pass)
# On a first sync, mail older than this is history: decided, but answered only when asked.
BACKFILL_AGE = timedelta(hours=24)
UID_SET_SIZE = 200  # UIDs per SEARCH/MOVE/STORE command
MAX_BACKOFF = 60.0
TLS_MODES = ("ssl", "starttls", "none")
_FLAG = re.compile(r'\\?[^\x00-\x20\x7f-\U0010ffff(){%*"\\\]]+')


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
    idle_renew_seconds: float = 540  # IDLE renewed at least every 10 minutes (DESIGN §8)
    timeout_seconds: float = 30  # socket timeout
    since: date | None = None  # first sync only: SEARCH SINCE instead of ALL (backfill)
    reply_to_backfill: bool = False  # first sync: also reply to mail older than BACKFILL_AGE


class ImapWatcher:
    """Watches one folder of one IMAP account; one thread runs `run()`, others may `wake()`."""

    def __init__(
        self,
        settings: ImapSettings,
        ledger: Ledger,
        on_new: Callable[[int], None] | None = None,
        progress: bool = False,
    ) -> None:
        if settings.tls not in TLS_MODES:
            raise ValueError(f"mailbox {settings.name}: tls must be one of {', '.join(TLS_MODES)}")
        self.settings = settings
        self.ledger = ledger
        self.on_new = on_new
        self.progress = progress
        self._client: IMAPClient | None = None
        self._uidvalidity: int | None = None  # of the folder selected on this connection
        self._uidnext = 0
        self._delimiter: str | None = None
        self._prefix = ""
        self._folders: set[str] = set()  # folders known to exist on this connection
        self._wake = threading.Event()
        self._looked_again = False  # the last wait was cut short by an announcement

    # -- sync ---------------------------------------------------------------------------
    def sync_once(self) -> int:
        """Bring the ledger up to date with the folder, then apply pending actions."""
        s = self.settings
        client = self._select()
        uidvalidity = self._uidvalidity
        stored, last_uid = self.ledger.mailbox_state(s.name)
        full = stored != uidvalidity
        if full:
            if stored is not None:
                log.warning("imap %s: UIDVALIDITY changed (%s → %s), re-reading %s",
                            s.name, stored, uidvalidity, s.folder)
            uids = sorted(client.search(["SINCE", s.since] if s.since else ["ALL"]))
            high = max([self._uidnext - 1, *uids], default=0)
        else:
            # `UID n:*` always matches the highest UID, even when it is below n.
            uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
            high = max([last_uid, *uids])
        # First sync: mail older than BACKFILL_AGE is history, decided without a reply
        # (unless asked); what came in lately still gets its answer.
        # A full read (the first, or after a UIDVALIDITY change) is history except what
        # came in lately; only an incremental sync brings nothing but new mail.
        reply_wanted = (not full) or s.reply_to_backfill
        new = self._take(client, uids, uidvalidity, reply_wanted,
                         state_uidvalidity=stored if full else uidvalidity,
                         show_progress=stored is None)
        self.ledger.set_mailbox_state(s.name, uidvalidity, high)
        if full and stored is not None and s.since is None:
            self._forget_vanished(uidvalidity)
        self.apply_actions()
        return new

    def _take(self, client: IMAPClient, uids: list[int], uidvalidity: int, reply_wanted: bool,
              state_uidvalidity: int | None, show_progress: bool) -> int:
        s = self.settings
        bar = self._progress_bar(len(uids)) if show_progress else None
        new = 0
        try:
            for start in range(0, len(uids), max(1, s.batch)):
                batch = uids[start:start + max(1, s.batch)]
                known = self.ledger.known_uids(s.name, uidvalidity, batch)
                wanted = [u for u in batch if u not in known]
                recent = set(wanted) if reply_wanted else self._recent(client, wanted)
                added = 0
                for uid, raw in self._fetch(client, wanted):
                    receipt = self.ledger.receive(s.name, raw, uidvalidity=uidvalidity, uid=uid,
                                                  reply_wanted=uid in recent)
                    added += receipt.new
                # During a full sync the old UIDVALIDITY stays recorded until the end.
                self.ledger.set_mailbox_state(s.name, state_uidvalidity, batch[-1])
                new += added
                if added and self.on_new is not None:
                    self.on_new(added)
                if bar is not None:
                    bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()
        return new

    def _recent(self, client: IMAPClient, uids: list[int]) -> set[int]:
        """The UIDs whose INTERNALDATE is within BACKFILL_AGE of now."""
        if not uids:
            return set()
        cutoff = datetime.now(UTC) - BACKFILL_AGE
        dates = client.fetch(uids, ["INTERNALDATE"])
        recent = set()
        for uid in uids:
            when = dates.get(uid, {}).get(b"INTERNALDATE")
            if when is None:
                continue
            if when.tzinfo is None:  # imapclient gives local naive times unless told otherwise
                when = when.astimezone()
            if when >= cutoff:
                recent.add(uid)
        return recent

    def _fetch(self, client: IMAPClient, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        """(uid, raw) for `uids`, in FETCHes of at most FETCH_BYTES; vanished UIDs are skipped."""
        if not uids:
            return
        sizes = client.fetch(uids, ["RFC822.SIZE"])
        group: list[int] = []
        total = 0
        for uid in uids:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0) or 0)
            if group and total + size > FETCH_BYTES:
                yield from self._fetch_bodies(client, group)
                group, total = [], 0
            group.append(uid)
            total += size
        if group:
            yield from self._fetch_bodies(client, group)

    def _fetch_bodies(self, client: IMAPClient, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        response = client.fetch(uids, ["BODY.PEEK[]"])
        missing = []
        for uid in uids:
            raw = response.get(uid, {}).get(b"BODY[]")
            if raw is None:
                missing.append(uid)
            else:
                yield uid, bytes(raw)
        if not missing:
            return
        present = set(client.search(["UID", _uid_set(missing)]))
        for uid in missing:
            if uid not in present:
                continue  # expunged since the SEARCH
            raw = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]")
            if raw is not None:
                yield uid, bytes(raw)
                continue
            problem = f"UID {uid} in {self.settings.folder}: the server sent no body; skipped"
            log.warning("imap %s: %s", self.settings.name, problem)
            self.ledger.record_error(self.settings.name, problem)

    def _progress_bar(self, total: int):  # -> tqdm | None
        if not (self.progress and total and sys.stderr.isatty()):
            return None
        from tqdm import tqdm

        return tqdm(total=total, unit="mail", desc=self.settings.name, file=sys.stderr)

    def _forget_vanished(self, uidvalidity: int) -> None:
        """After a full re-read, pending rows not found again are no longer in the folder."""
        for entry in self._pending():
            if entry.uidvalidity != uidvalidity:
                self.ledger.action_done(entry.id)

    # -- mailbox actions ----------------------------------------------------------------
    def apply_actions(self) -> int:
        """Carry out pending `move:FOLDER` / `keyword:KW` actions; returns rows marked done."""
        client = self._client
        if client is not None and self._uidvalidity is not None:
            client.noop()  # learn what others expunged since the last command
        else:
            client = self._select()
        groups: dict[str, list[Entry]] = {}
        for entry in self._pending():
            # Rows from an old UIDVALIDITY wait until a re-sync has found their new UID.
            if entry.uidvalidity == self._uidvalidity and entry.uid is not None:
                groups.setdefault(entry.action or "", []).append(entry)
        done = 0
        for action, entries in groups.items():
            try:
                done += self._apply(client, action, entries)
            except IMAPClientAbortError:
                raise
            except (IMAPClientError, ValueError) as exc:  # NO/BAD or a bad action: not fatal
                problem = f"action {action!r}: {exc}"
                log.warning("imap %s: %s", self.settings.name, problem)
                self.ledger.record_error(self.settings.name, problem)
        return done

    def _pending(self) -> list[Entry]:
        return self.ledger.pending_actions(self.settings.name, limit=100_000)

    def _apply(self, client: IMAPClient, action: str, entries: list[Entry]) -> int:
        kind, _, arg = action.partition(":")
        if kind not in ("move", "keyword") or not arg:
            raise ValueError("unknown mailbox action (expected move:FOLDER or keyword:KW)")
        if kind == "keyword" and not _is_flag(arg):
            raise ValueError("not a valid IMAP keyword")
        by_uid = {int(e.uid): e for e in entries if e.uid is not None}
        done = 0
        for chunk in _chunks(sorted(by_uid), UID_SET_SIZE):
            for attempt in (1, 2):
                present = set(client.search(["UID", _uid_set(chunk)]))
                targets = [uid for uid in chunk if uid in present]
                try:
                    if targets and kind == "move":
                        self._move(client, targets, arg)
                    elif targets:
                        client.add_flags(targets, [arg], silent=True)
                    break
                except IMAPClientAbortError:
                    raise
                except IMAPClientError as exc:
                    if attempt == 2 or "EXPUNGEISSUED" not in str(exc):
                        raise
                    client.noop()  # someone expunged one of them meanwhile: look again
            for uid in chunk:  # the server said OK; a UID no longer there counts as done
                self.ledger.action_done(by_uid[uid].id)
            done += len(chunk)
        return done

    def _move(self, client: IMAPClient, uids: list[int], folder: str) -> None:
        target = self._server_folder(folder)
        if target not in self._folders:
            if not client.folder_exists(target):
                try:
                    client.create_folder(target)
                except IMAPClientAbortError:
                    raise
                except IMAPClientError:
                    if not client.folder_exists(target):  # created meanwhile by someone else?
                        raise
                try:
                    client.subscribe_folder(target)  # so the clerk's mail program shows it
                except IMAPClientAbortError:
                    raise
                except IMAPClientError:
                    pass
            self._folders.add(target)
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        client.copy(uids, target)
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        # Without UIDPLUS a bare EXPUNGE would also remove what others marked \Deleted:
        # leave the copies flagged for the clerk's mail program to expunge.

    def _server_folder(self, folder: str) -> str:
        """Config folder names use '/' for hierarchy; write them with the server's delimiter."""
        name = folder.replace("/", self._delimiter) if self._delimiter else folder
        if self._prefix and name.upper() != "INBOX" and not name.startswith(self._prefix):
            name = self._prefix + name
        return name

    # -- the loop -----------------------------------------------------------------------
    def wake(self) -> None:
        """Ask `run()` to sync and apply actions soon (e.g. after the pipeline decided)."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        name = self.settings.name
        delay = 0.0
        while not stop.is_set():
            try:
                self._wake.clear()
                self.sync_once()
                delay = 0.0
                self._wait_for_news(stop)
            except Exception as exc:
                if stop.is_set():
                    break
                delay = min(delay * 2, MAX_BACKOFF) if delay else 1.0
                problem = f"{type(exc).__name__}: {exc}"
                connection = isinstance(exc, (IMAPClientError, OSError))
                log.warning("imap %s: %s; reconnecting in %.0f s", name, problem, delay,
                            exc_info=not connection)
                try:
                    self.ledger.record_error(name, problem)
                except Exception as db_exc:
                    log.warning("imap %s: could not record the error: %s", name, db_exc)
                self._drop()
                stop.wait(delay)
        self.close()

    def _wait_for_news(self, stop: threading.Event) -> None:
        s = self.settings
        client = self._client
        assert client is not None
        if _announced_since_select(client) and not self._looked_again:
            # A mail came in while we were syncing: look again before waiting (once: a
            # server announcing on every command must not keep us from IDLE).
            self._looked_again = True
            return
        self._looked_again = False
        if not client.has_capability("IDLE"):
            deadline = time.monotonic() + s.poll_seconds
            while not self._wake.is_set() and time.monotonic() < deadline:
                if stop.wait(min(IDLE_CHECK_SECONDS, max(0.0, deadline - time.monotonic()))):
                    return
            return
        client.idle()
        renew_at = time.monotonic() + s.idle_renew_seconds
        while not stop.is_set() and not self._wake.is_set():
            left = renew_at - time.monotonic()
            if left <= 0:
                break  # renew IDLE; the sync that follows doubles as a keep-alive
            wait = min(IDLE_CHECK_SECONDS, left)
            started = time.monotonic()
            responses = client.idle_check(timeout=wait)
            if any(r and r[0] == b"BYE" for r in responses):
                raise ConnectionError("the server closed the connection (BYE)")
            if any(len(r) > 1 and r[1] == b"EXISTS" for r in responses):
                break
            if not responses and time.monotonic() - started < wait / 2:
                # Readable but nothing parsed: idle_check swallows EOF (DESIGN §8).
                # idle_done() below raises if the connection is really gone.
                break
        client.idle_done()

    # -- connection ---------------------------------------------------------------------
    def _select(self) -> IMAPClient:
        """Select the folder (reconnecting once if the old connection died); sets UIDVALIDITY."""
        reused = self._client is not None
        client = self._client or self._connect()
        try:
            info = client.select_folder(self.settings.folder)
        except (IMAPClientAbortError, OSError):
            self._drop()
            if not reused:
                raise
            client = self._connect()
            info = client.select_folder(self.settings.folder)
        if b"UIDVALIDITY" not in info:
            raise IMAPClientError(f"{self.settings.folder}: the server sent no UIDVALIDITY")
        self._uidvalidity = int(info[b"UIDVALIDITY"])
        self._uidnext = int(info.get(b"UIDNEXT", 0) or 0)
        _announced_since_select(client)  # the SELECT's own count is no news
        return client

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
        log.info("imap %s: connected to %s:%d", s.name, s.host, s.port)
        self._client = client
        self._folders.clear()
        return client

    def _drop(self) -> None:
        """Forget the connection without a LOGOUT (it may be dead; LOGOUT would wait)."""
        client, self._client, self._uidvalidity = self._client, None, None
        if client is not None:
            _shutdown(client)

    def close(self) -> None:
        client, self._client, self._uidvalidity = self._client, None, None
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


def _announced_since_select(client: IMAPClient) -> bool:
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


def _is_flag(word: str) -> bool:
    """An IMAP keyword (an atom: printable ASCII without atom-specials) or a \\System flag."""
    return _FLAG.fullmatch(word) is not None


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _uid_set(uids: Sequence[int]) -> str:
    return ",".join(str(uid) for uid in uids)

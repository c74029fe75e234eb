"""The watcher of one IMAP folder: sync into the ledger, apply actions, wait, reconnect.

`ImapWatcher.sync_once()` selects the folder, compares its UIDVALIDITY with the ledger's
`mailbox_state`, fetches the messages above the recorded UID (everything — or everything
SINCE a date — on the first sync and after a UIDVALIDITY change) and hands each to
`Ledger.receive()`, which spools it durably. The state advances only after a batch is in
the ledger; a full re-sync records the new UIDVALIDITY only when it has finished, so a
crash in the middle repeats it and the ledger's content hash makes the repetition harmless
(nothing skipped, nothing duplicated). Every UID is its own ledger row: a second
byte-identical copy in the folder and a mail a clerk moved back into it are recorded,
decided (as a duplicate, or again) and moved like any other.

`apply_actions()` then carries out the mailbox actions the pipeline decided, only for rows
recorded under the current UIDVALIDITY (`actions.py`).

`run()` loops: sync, wait for news in IDLE (or poll) unless the server announced new mail
while we were syncing, and on any connection problem record the error in the ledger,
reconnect with exponential backoff and log one line. Message contents are never logged.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailbot.ledger import Entry, Ledger

from .actions import apply_action
from .connection import ImapConnection, ImapSettings, announced_since_select
from .fetch import fetch_messages, recent_uids
from .idle import wait_for_news

log = logging.getLogger("mailbot.sources.imap")

MAX_BACKOFF = 60.0


class ImapWatcher:
    """Watches one folder of one IMAP account; one thread runs `run()`, others may `wake()`."""

    def __init__(
        self,
        settings: ImapSettings,
        ledger: Ledger,
        on_new: Callable[[int], None] | None = None,
        progress: bool = False,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self._connection = ImapConnection(settings)  # checks the settings' TLS mode
        self.settings = settings
        self.ledger = ledger
        self.on_new = on_new
        self.on_state = on_state  # True after each good sync, False when the connection failed
        self.progress = progress
        self._wake = threading.Event()
        self._looked_again = False  # the last wait was cut short by an announcement

    # -- sync ---------------------------------------------------------------------------
    def sync_once(self) -> int:
        """Bring the ledger up to date with the folder, then apply pending actions."""
        s = self.settings
        client, uidvalidity = self._connection.select()
        stored, last_uid = self.ledger.mailbox_state(s.name)
        full = stored != uidvalidity
        if full:
            if stored is not None:
                log.warning("imap %s: UIDVALIDITY changed (%s → %s), re-reading %s",
                            s.name, stored, uidvalidity, s.folder,
                            extra={"mailbox": s.name, "uidvalidity": uidvalidity})
            uids = sorted(client.search(["SINCE", s.since] if s.since else ["ALL"]))
            high = max([self._connection.uidnext - 1, *uids], default=0)
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
                recent = set(wanted) if reply_wanted else recent_uids(client, wanted)
                added = 0
                for uid, raw in fetch_messages(client, wanted, self._no_body):
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

    def _no_body(self, uid: int) -> None:
        problem = f"UID {uid} in {self.settings.folder}: the server sent no body; skipped"
        log.warning("imap %s: %s", self.settings.name, problem,
                    extra={"mailbox": self.settings.name, "uid": uid})
        self.ledger.record_error(self.settings.name, problem)

    def _progress_bar(self, total: int) -> Any:  # a tqdm bar, or None
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
        connection = self._connection
        if connection.client is not None and connection.uidvalidity is not None:
            client, uidvalidity = connection.client, connection.uidvalidity
            client.noop()  # learn what others expunged since the last command
        else:
            client, uidvalidity = connection.select()
        groups: dict[str, list[Entry]] = {}
        for entry in self._pending():
            # Rows from an old UIDVALIDITY wait until a re-sync has found their new UID.
            if entry.uidvalidity == uidvalidity and entry.uid is not None:
                groups.setdefault(entry.action or "", []).append(entry)
        done = 0
        for action, entries in groups.items():
            try:
                done += apply_action(client, connection, self.ledger, action, entries)
            except IMAPClientAbortError:
                raise
            except (IMAPClientError, ValueError) as exc:  # NO/BAD or a bad action: not fatal
                problem = f"action {action!r}: {exc}"
                log.warning("imap %s: %s", self.settings.name, problem,
                            extra={"mailbox": self.settings.name})
                self.ledger.record_error(self.settings.name, problem)
        return done

    def _pending(self) -> list[Entry]:
        return self.ledger.pending_actions(self.settings.name, limit=100_000)

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
                if self.on_state is not None:
                    self.on_state(True)
                self._wait_for_news(stop)
            except Exception as exc:
                if stop.is_set():
                    break
                delay = min(delay * 2, MAX_BACKOFF) if delay else 1.0
                problem = f"{type(exc).__name__}: {exc}"
                connection = isinstance(exc, (IMAPClientError, OSError))
                log.warning("imap %s: %s; reconnecting in %.0f s", name, problem, delay,
                            exc_info=not connection, extra={"mailbox": name})
                try:
                    self.ledger.record_error(name, problem)
                except Exception as db_exc:
                    log.warning("imap %s: could not record the error: %s", name, db_exc,
                                extra={"mailbox": name})
                self._connection.drop()
                if self.on_state is not None:
                    self.on_state(False)
                stop.wait(delay)
        self.close()

    def _wait_for_news(self, stop: threading.Event) -> None:
        client = self._connection.client
        assert client is not None
        if announced_since_select(client) and not self._looked_again:
            # A mail came in while we were syncing: look again before waiting (once: a
            # server announcing on every command must not keep us from IDLE).
            self._looked_again = True
            return
        self._looked_again = False
        wait_for_news(client, self.settings, stop, self._wake)

    def close(self) -> None:
        self._connection.close()

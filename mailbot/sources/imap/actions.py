"""Carrying out the mailbox actions the pipeline decided: `move:FOLDER`, `keyword:KW`.

Always by UID, in sets of `UID_SET_SIZE`, and only for UIDs still in the folder; a UID the
server no longer has counts as done. A move creates (and subscribes) the target folder
when it is missing, and without the MOVE extension copies, flags \\Deleted and expunges
only those UIDs (UIDPLUS), never what others marked.
"""

from __future__ import annotations

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailbot.ledger import Entry, Ledger
from mailbot.protocols import is_imap_keyword

from .connection import ImapConnection
from .fetch import UID_SET_SIZE, chunks, uid_set


def apply_action(client: IMAPClient, connection: ImapConnection, ledger: Ledger,
                 action: str, entries: list[Entry]) -> int:
    """Carry out `action` on the entries' UIDs; returns the rows marked done."""
    kind, _, arg = action.partition(":")
    if kind not in ("move", "keyword") or not arg:
        raise ValueError("unknown mailbox action (expected move:FOLDER or keyword:KW)")
    if kind == "keyword" and not is_imap_keyword(arg):
        raise ValueError("not a valid IMAP keyword")
    by_uid = {int(e.uid): e for e in entries if e.uid is not None}
    done = 0
    for chunk in chunks(sorted(by_uid), UID_SET_SIZE):
        for attempt in (1, 2):
            present = set(client.search(["UID", uid_set(chunk)]))
            targets = [uid for uid in chunk if uid in present]
            try:
                if targets and kind == "move":
                    _move(client, connection, targets, arg)
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
            ledger.action_done(by_uid[uid].id)
        done += len(chunk)
    return done


def _move(client: IMAPClient, connection: ImapConnection, uids: list[int], folder: str) -> None:
    target = connection.server_folder(folder)
    if target not in connection.folders:
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
        connection.folders.add(target)
    if client.has_capability("MOVE"):
        client.move(uids, target)
        return
    client.copy(uids, target)
    client.add_flags(uids, [b"\\Deleted"], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    # Without UIDPLUS a bare EXPUNGE would also remove what others marked \Deleted:
    # leave the copies flagged for the clerk's mail program to expunge.

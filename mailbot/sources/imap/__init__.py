"""IMAP source: one watcher per mailbox, copying its messages into the ledger (docs/reliability.md, docs/reading.md).

- `connection.py`: the settings, TLS and login, SELECT with its UIDVALIDITY, folder names.
- `fetch.py`: reading messages by UID in bounded FETCHes (``BODY.PEEK[]``: \\Seen is never set).
- `actions.py`: the mailbox actions the pipeline decided (`move:FOLDER`, `keyword:KW`).
- `idle.py`: waiting for news in IDLE, or polling.
- `watcher.py`: `ImapWatcher`, which syncs, applies actions, waits and reconnects.
"""

from .connection import ImapSettings
from .watcher import ImapWatcher

__all__ = ["ImapSettings", "ImapWatcher"]

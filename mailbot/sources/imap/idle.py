"""Waiting for news on the selected folder: IDLE when the server has it, else polling.

The wait ends when the server announces mail (EXISTS), when the watcher is woken or
stopped, when IDLE is due for renewal (the sync that follows doubles as a keep-alive), or
when the connection says BYE (raised: the watcher reconnects).
"""

from __future__ import annotations

import threading
import time

from imapclient import IMAPClient

from .connection import ImapSettings

IDLE_CHECK_SECONDS = 2.0  # how often IDLE looks at `stop` and `wake()`


def wait_for_news(client: IMAPClient, settings: ImapSettings, stop: threading.Event,
                  wake: threading.Event) -> None:
    if not client.has_capability("IDLE"):
        deadline = time.monotonic() + settings.poll_seconds
        while not wake.is_set() and time.monotonic() < deadline:
            if stop.wait(min(IDLE_CHECK_SECONDS, max(0.0, deadline - time.monotonic()))):
                return
        return
    client.idle()
    renew_at = time.monotonic() + settings.idle_renew_seconds
    while not stop.is_set() and not wake.is_set():
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
            # Readable but nothing parsed: idle_check swallows EOF (docs/reading.md).
            # idle_done() below raises if the connection is really gone.
            break
    client.idle_done()

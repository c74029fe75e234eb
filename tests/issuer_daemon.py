"""One issuer mailbox on a real Dovecot, the daemon on a thread, replies to an aiosmtpd sink.

For the end-to-end tests of what gets a reply and what does not (tests/test_office_docs.py,
tests/test_reply_addresses.py): `issuer_daemon` runs `mailbot run`'s daemon as
tests/test_replies_e2e.py does; `settled` says when every delivered mail is decided, filed and
its reply (if any) sent, so a test can count replies without sleeping.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mailbot.config import Config, load_config
from mailbot.daemon import Daemon
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import ledger, outbox, reply_requests

from .configs import issuer_config, smtp_config
from .conftest import TEST_SECRET
from .test_daemon import USER

SMTP = smtp_config("{port}")


@contextmanager
def issuer_daemon(dovecot: Any, sink: Any, tmp_path: Path, monkeypatch: Any,
                  events: list[GuaranteeEvent], *, issuer: str = "",
                  clock: Callable[[], datetime] | None = None, extra: str = "",
                  ) -> Iterator[tuple[Config, Store, Daemon]]:
    """The daemon watching `USER`'s INBOX, with `events` in a fresh SQLite store; `issuer`:
    more keys of its [issuers.maru] table; `clock`: the daemon's clock; `extra`: more
    tables (e.g. `[auth]`)."""
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "secret")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    path = tmp_path / "mailbot.toml"
    text = issuer_config(url, tmp_path / "spool", imap_port=dovecot.imap_port, user=USER)
    text = text.replace('[issuers.maru]\nname = "〇〇市"\n',
                        f'[issuers.maru]\nname = "〇〇市"\n{issuer}')
    path.write_text(SMTP.format(port=sink.settings.port) + text + extra, encoding="utf-8")
    store = Store.open(url, secret=TEST_SECRET)
    store.apply(events)
    config = load_config(path)
    daemon = Daemon(config, store, workers=1, outbox_seconds=0.3, clock=clock)
    thread = threading.Thread(target=lambda: (daemon.start(), daemon.run()), daemon=True)
    thread.start()
    try:
        yield config, store, daemon
    finally:
        daemon.stop.set()
        daemon.news.set()
        thread.join(timeout=30)
        daemon.shutdown()
        store.close()


def settled(store: Store, mails: int) -> bool:
    """`mails` messages decided and filed, and no reply waiting to be rendered or sent."""
    with store.engine.connect() as conn:
        done = conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.state.in_(("decided", "replied")), ledger.c.action_state == "done")
        ).scalar_one()
        waiting = conn.execute(select(func.count()).select_from(reply_requests).where(
            reply_requests.c.state != "sent")).scalar_one()
        unsent = conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.state == "queued")).scalar_one()
    return done == mails and waiting == 0 and unsent == 0


def decision(store: Store, message_id: str) -> dict[str, Any]:
    """The decision record of the message with `message_id`."""
    with store.engine.connect() as conn:
        text = conn.execute(select(ledger.c.decision).where(
            ledger.c.message_id == message_id)).scalar_one()
    return json.loads(text)


def accepted(sink: Any) -> list[EmailMessage]:
    """What the relay accepted, parsed."""
    return [message_from_bytes(raw, policy=policy.default)  # type: ignore[misc]
            for _from, _to, raw in sink.accepted]

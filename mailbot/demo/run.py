"""`run_demo`: write the samples, start the relay and the daemon, deliver, wait until every
mail has its final state, then print the report."""

from __future__ import annotations

import logging
import os
import smtplib
import sys
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from mailbot.config import load_config
from mailbot.ledger import Ledger, LedgerState
from mailbot.outbox import Outbox
from mailbot.samples.catalog import all_samples
from mailbot.store import Store
from mailbot.store.secret import SECRET_FILE_NAME
from mailbot.submit import table

from .relay import _free_port, _Relay
from .report import _report_contractor, _report_issuer
from .setting import (
    CASES,
    CONFIG,
    CONTRACTOR,
    CONTRACTOR_ADDR,
    FINAL,
    INBOX,
    ISSUER,
    NOTIFICATIONS,
    SECRET,
    STAFF,
    SURETY_ADDR,
    _notification_mail,
    _register,
)


def _overlapping_tick(record: logging.LogRecord) -> bool:
    """The demo's outbox tick is a quarter second; a tick still relaying when the next is
    due makes APScheduler skip that one and say so. Expected here, so not shown."""
    return "maximum number of running instances" not in record.getMessage()



def _complete(ledger: Ledger, outbox: Outbox) -> bool:
    """Every issuer-side mail decided and answered, every notice's submission final, every
    staff alert sent and nothing left in the outbox."""
    issuer_mails = len(CASES) + sum(c.expected != "unroutable" for c in NOTIFICATIONS)
    alerts = sum(c.expected != "confirmed" for c in NOTIFICATIONS)
    done = (LedgerState.DECIDED, LedgerState.REPLIED)
    by_mailbox = ledger.counts()
    outgoing = outbox.counts()
    with outbox.engine.connect() as conn:
        submitted = table.counts(conn)
    return (
        sum(by_mailbox.get("keiyaku", {}).get(state, 0) for state in done) == issuer_mails
        and outgoing.get(("reply", "sent"), 0) == issuer_mails
        and sum(submitted.get(state, 0) for state in FINAL) == len(NOTIFICATIONS)
        and outgoing.get(("alert", "sent"), 0) == alerts
        and not any(count for (_kind, state), count in outgoing.items() if state == "queued")
        and not any(count for states in by_mailbox.values()
                    for state, count in states.items() if state not in done)
    )


def _keep_secret(path: Path) -> None:
    """The demo's key-hashing secret beside its database, where `mailbot status|verify|
    replay --config demo-out/mailbot.toml` find it (docs/security.md: the secret goes with
    the database); mode 0600 like every secret file."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(SECRET.decode("ascii") + "\n")


def run_demo(out: str) -> int:
    from mailbot.daemon import Daemon

    started = time.monotonic()
    folder = Path(out).resolve()
    dirs = {name: folder / name for name in ("replies", "submissions", "staff")}
    for sub in dirs.values():
        sub.mkdir(parents=True, exist_ok=True)
    for old in [p for d in dirs.values() for p in d.glob("*.eml")] + [folder / "demo.db"]:
        old.unlink(missing_ok=True)
    samples = {s.name: s for s in all_samples([c[0] for c in CASES])}
    for sample in samples.values():
        (folder / sample.filename).write_bytes(sample.data)
    notifications = {c.name: _notification_mail(c) for c in NOTIFICATIONS}
    for name, raw in notifications.items():
        (folder / f"{name}.eml").write_bytes(raw)

    relay = _Relay((INBOX, CONTRACTOR_ADDR))
    sink_port = _free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=sink_port)
    controller.start()
    path = folder / "mailbot.toml"
    path.write_text(CONFIG.format(db=folder / "demo.db", spool=folder / "spool",
                                  sink_port=sink_port, inbox=INBOX, issuer=ISSUER,
                                  contractor=CONTRACTOR, contractor_addr=CONTRACTOR_ADDR,
                                  staff=STAFF), encoding="utf-8")
    config = load_config(path)
    _keep_secret(folder / SECRET_FILE_NAME)
    store = Store.open(config.store_url or "", secret=SECRET)
    _register(store, samples)
    daemon = Daemon(config, store, workers=2, outbox_seconds=0.25)
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    scheduler_log.addFilter(_overlapping_tick)
    def serve() -> None:
        daemon.start()
        daemon.run()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    complete = False
    try:
        while not daemon._listeners:  # noqa: SLF001 — the demo needs the port it was given
            time.sleep(0.05)
        port = daemon._listeners[0].port  # noqa: SLF001
        relay.lmtp_port = port
        print(f"mailbot demo: store, spool and mails in {folder}/")
        print(f"  intake: LMTP on 127.0.0.1:{port} for {INBOX} (issuer) and {CONTRACTOR_ADDR} "
              f"(contractor)\n  relay: a local SMTP server on 127.0.0.1:{sink_port} that hands "
              f"mail for these two back to the listener and keeps the rest\n"
              f"  sending {len(CASES)} contractor mails to the issuer and "
              f"{len(NOTIFICATIONS)} surety notifications to the contractor …", flush=True)
        with smtplib.LMTP("127.0.0.1", port) as client:
            for name, _what, _how in CASES:
                client.sendmail("tanto@maru-kensetsu.example.jp", [INBOX], samples[name].data)
            for raw in notifications.values():
                client.sendmail(SURETY_ADDR, [CONTRACTOR_ADDR], raw)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if _complete(daemon.ledger, daemon.outgoing.outbox):
                complete = True
                break
            time.sleep(0.1)
    finally:
        daemon.stop.set()
        daemon.news.set()
        thread.join(timeout=30)
        daemon.shutdown()
        controller.stop()
        scheduler_log.removeFilter(_overlapping_tick)
    issuer_missing = _report_issuer(daemon.ledger.entries(limit=10_000), samples,
                                    relay.messages, dirs["replies"])
    with store.engine.connect() as conn:
        submitted = table.listing(conn)
    contractor_missing = _report_contractor(submitted, config, relay.messages, dirs)
    store.close()
    print(f"\ndone in {time.monotonic() - started:.1f} s; open a mail with any mail program, "
          f"e.g. `python3 -c \"import sys,email.policy;print(email.message_from_binary_file("
          f"open(sys.argv[1],'rb'),policy=email.policy.default).get_body(('plain',))"
          f".get_content())\" FILE`")
    if issuer_missing or contractor_missing or not complete:
        print("some mails got no reply or no final state in time", file=sys.stderr)
        return 1
    return 0


"""`mailbot demo`: the whole job on embedded defaults, start to finish, in under a minute.

It registers sample guarantees in a fresh SQLite store, starts the daemon with an LMTP
intake listener and a local SMTP sink standing in for the organisation's relay, delivers
sample contractor mails (valid; wrong key; unknown number; wrong issuer; password-protected
zip; two notices in one mail; a typed body), waits for every decision and reply, prints a
table of outcomes and writes the replies as .eml files to the folder it names. Nothing to
install or configure beyond the package; nothing leaves this machine.
"""

from __future__ import annotations

import smtplib
import socket
import sys
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from mailbot.config import load_config
from mailbot.samples.catalog import all_samples
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import ledger, outbox

ISSUER = "〇〇市"
INBOX = "keiyaku@city.example.jp"
SECRET = b"demo-secret-not-for-production-0123"
# (sample, what it shows, how its guarantees are registered). All render with the CID font
# reportlab carries, so the demo needs no font package.
CASES = (
    ("ejcs_cid", "all valid", "as sent"),
    ("fullwidth_values", "wrong key", "other key"),
    ("generic_header_table", "unknown number", "not registered"),
    ("forwarded", "wrong issuer", "other issuer"),
    ("zip_encrypted", "password-protected zip", "as sent"),
    ("two_pdfs", "two notices in one mail", "as sent"),
    ("body_shift_jis", "typed in the body", "as sent"),
)
CONFIG = """
[store]
url = "sqlite:///{db}"
[spool]
dir = "{spool}"
[smtp]
host = "127.0.0.1"
port = {sink_port}
from = "{inbox}"
[send_window]
# The demo runs at any hour: replies go out at once. A real config keeps the window.
immediate = ["confirmation", "discrepancy"]
[digest]
enabled = false
[issuers.city]
name = "{issuer}"
reply_from = "{inbox}"
reply_name = "{issuer} 契約検査課"
staff = ["kensa@city.example.jp"]
[[mailboxes]]
name = "keiyaku"
role = "issuer"
issuer = "city"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["{inbox}"]
"""


class _Sink:
    """An SMTP server that keeps what it is sent: the stand-in for the relay."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _register(store: Store, samples: dict) -> None:
    events = []
    for name, _what, how in CASES:
        for notice in samples[name].expected["notices"]:
            if how == "not registered":
                continue
            key = "Wr0ngKeyDemo" if how == "other key" else notice["auth_key"]
            issuer = "△△町" if how == "other issuer" else ISSUER
            events.append(GuaranteeEvent(
                notice["guarantee_number"], "new", key, kind=notice["kind"], issuer=issuer,
                contractor=notice["contractor"], project_name=notice["project_name"],
                source=f"demo:{name}"))
    store.apply(events)


def _count(store: Store, table, *where) -> int:  # noqa: ANN001
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def run_demo(out: str) -> int:
    from mailbot.daemon import Daemon

    started = time.monotonic()
    folder = Path(out).resolve()
    replies_dir = folder / "replies"
    replies_dir.mkdir(parents=True, exist_ok=True)
    for old in list(replies_dir.glob("*.eml")) + [folder / "demo.db"]:
        old.unlink(missing_ok=True)
    samples = {s.name: s for s in all_samples([c[0] for c in CASES])}
    for sample in samples.values():
        (folder / sample.filename).write_bytes(sample.data)

    sink = _Sink()
    sink_port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    controller.start()
    path = folder / "mailbot.toml"
    path.write_text(CONFIG.format(db=folder / "demo.db", spool=folder / "spool",
                                  sink_port=sink_port, inbox=INBOX, issuer=ISSUER),
                    encoding="utf-8")
    config = load_config(path)
    store = Store.open(config.store_url or "", secret=SECRET)
    _register(store, samples)
    daemon = Daemon(config, store, workers=2, outbox_seconds=0.5)
    thread = threading.Thread(target=lambda: (daemon.start(), daemon.run()), daemon=True)
    thread.start()
    try:
        while not daemon._listeners:  # noqa: SLF001 — the demo needs the port it was given
            time.sleep(0.05)
        port = daemon._listeners[0].port  # noqa: SLF001
        print(f"mailbot demo: store, spool and replies in {folder}/")
        print(f"  intake: LMTP on 127.0.0.1:{port}; relay: a local SMTP sink on "
              f"127.0.0.1:{sink_port}\n  sending {len(CASES)} contractor mails …", flush=True)
        with smtplib.LMTP("127.0.0.1", port) as client:
            for name, _what, _how in CASES:
                client.sendmail("tanto@maru-kensetsu.example.jp", [INBOX], samples[name].data)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if (_count(store, ledger, ledger.c.state.in_(("decided", "replied"))) == len(CASES)
                    and _count(store, outbox, outbox.c.state == "sent") == len(CASES)):
                break
            time.sleep(0.2)
    finally:
        daemon.stop.set()
        daemon.news.set()
        thread.join(timeout=30)
        daemon.shutdown()
        controller.stop()
    return _report(store, samples, sink.messages, replies_dir, started)


def _report(store: Store, samples: dict, sent: list[bytes], replies_dir: Path,
            started: float) -> int:
    import json

    by_subject_id = {}
    for raw in sent:
        reply = message_from_bytes(raw, policy=policy.default)
        by_subject_id[str(reply.get("In-Reply-To", "")).strip()] = raw
    with store.engine.connect() as conn:
        rows = {r.message_id.strip() if r.message_id else "": r for r in conn.execute(select(ledger))}
    store.close()
    print(f"\n{'mail':<26}{'shows':<26}{'decision':<13}{'outcomes / problems':<34}reply")
    missing = 0
    for index, (name, what, _how) in enumerate(CASES, 1):
        message_id = str(message_from_bytes(samples[name].data, policy=policy.default)
                         .get("Message-ID", "")).strip()
        row = rows.get(message_id)
        record = json.loads(row.decision) if row is not None and row.decision else {}
        codes = record.get("outcomes", []) + [p["code"] for p in record.get("problems", [])]
        raw = by_subject_id.get(message_id)
        reply_name = "-"
        if raw is not None:
            reply_name = f"replies/{index:02d}_{name}.eml"
            (replies_dir.parent / reply_name).write_bytes(raw)
        else:
            missing += 1
        print(f"{name:<26}{what:<26}{record.get('status', 'undecided'):<13}"
              f"{', '.join(codes) or '-':<34}{reply_name}")
    print(f"\n{len(CASES) - missing}/{len(CASES)} replies written to {replies_dir}/ in "
          f"{time.monotonic() - started:.1f} s; open one with any mail program, e.g. "
          f"`python3 -c \"import sys,email.policy;print(email.message_from_binary_file("
          f"open(sys.argv[1],'rb'),policy=email.policy.default).get_content())\" FILE`")
    if missing:
        print("some mails got no reply in time", file=sys.stderr)
        return 1
    return 0

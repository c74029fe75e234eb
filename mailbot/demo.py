"""`mailbot demo`: the whole job on embedded defaults, start to finish, in under a minute.

It registers sample guarantees in a fresh SQLite store and starts one daemon with two LMTP
mailboxes on one listener: an issuer's inbox and a contractor's notification queue. A local
SMTP server stands in for the organisation's relay: mail to the daemon's own addresses is
handed back to the listener, everything else is only kept. The issuer side gets sample
contractor mails (valid; wrong key; unknown number; wrong issuer; password-protected zip;
two notices in one mail; a typed body); the contractor side gets surety notifications with a
notice PDF (one the issuer confirms, one it finds a wrong key in, one no issuer can be found
for). The demo waits for every decision, reply, submission and answer, prints two tables and
writes the mails as .eml files to the folder it names. Nothing to install or configure
beyond the package; nothing leaves this machine.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from mailbot.config import Config, load_config
from mailbot.samples.base import EJCS
from mailbot.samples.catalog import all_samples
from mailbot.samples.notice_pdf import NoticeFields, render_notice_pdf
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import ledger, outbox, submissions

ISSUER = "〇〇市"
INBOX = "keiyaku@city.example.jp"
CONTRACTOR = "〇〇建設株式会社"
CONTRACTOR_ADDR = "denshi@maru-kensetsu.example.jp"
STAFF = "jimu@maru-kensetsu.example.jp"
SURETY_ADDR = "info@hosho.example.jp"
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


@dataclass(frozen=True)
class Notification:
    """A surety's notice arriving in the contractor's queue, and what the demo expects."""

    name: str
    shows: str
    fields: NoticeFields
    registered_key: str | None  # None: the number is not in the store
    expected: str  # the submission's final state


# The contractor side. Numbers, keys and projects are the demo's own (no sample uses them).
NOTIFICATIONS = (
    Notification("surety_valid", "registered, same key", NoticeFields(
        "36201-00101A", "Dm4Kp7Rw2Xz9", "前払金保証", "〇〇公園整備工事", CONTRACTOR, EJCS),
        "Dm4Kp7Rw2Xz9", "confirmed"),
    Notification("surety_wrong_key", "registered, other key", NoticeFields(
        "36201-00102B", "Hn3Vt8Qy5Lc6", "契約保証", "〇〇公園整備工事", CONTRACTOR, EJCS),
        "Hn3Vt8Qy5Lc7", "discrepancy"),
    Notification("surety_unroutable", "unknown number, no rule", NoticeFields(
        "36201-00103C", "Wb6Js1Mf9Ge2", "前払金保証", "△△地区排水路改修工事", CONTRACTOR, EJCS),
        None, "unroutable"),
)
FINAL = ("confirmed", "discrepancy", "answered", "unroutable", "failed", "cancelled")

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

# The contractor side: how {issuer} wants guarantees submitted.
[issuers.city.submission]
to = "{inbox}"
subject = "【電子保証】{{{{ project_no }}}} {{{{ project_name }}}}"
subject_by_kind = {{ "前払金保証" = "【前払金書類】{{{{ project_no }}}}" }}
fields = ["受注者", "担当者氏名・連絡先", "工事名", "工事番号", "保証名称"]
[issuers.city.submission.window]
# The demo runs at any hour, so submissions may go out at any hour too. A real config keeps
# the issuer's office hours (the default: weekdays 09:00-17:00, closed on national holidays
# and 12/29-1/3), or leaves this table out to use [send_window].
start = "00:00"
end = "23:59:59"
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
skip_holidays = false
year_end_closed = false

[contractor]
name = "{contractor}"
from = "{contractor_addr}"
person = "工事部 〇〇"
contact = "000-0000-0000"
staff = ["{staff}"]

[[projects]]
name = "〇〇公園"
project = "〇〇公園整備工事"
issuer = "city"
project_no = "R8-0412"

[[mailboxes]]
name = "keiyaku"
role = "issuer"
issuer = "city"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["{inbox}"]

# The contractor's notification queue, on the same listener.
[[mailboxes]]
name = "denshi"
role = "contractor"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["{contractor_addr}"]
"""


@dataclass(frozen=True)
class Relayed:
    """One message the relay accepted (and, for the daemon's own addresses, handed on)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class _Relay:
    """The stand-in for the relay: keeps everything it is sent and hands mail for the
    daemon's own addresses to the daemon's LMTP listener, one recipient per transaction."""

    def __init__(self, local: tuple[str, ...]) -> None:
        self.local = {a.lower() for a in local}
        self.lmtp_port: int | None = None  # set once the daemon listens
        self.messages: list[Relayed] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
        raw = envelope.original_content or envelope.content
        local = [r for r in envelope.rcpt_tos if r.lower() in self.local]
        if local:
            # aiosmtpd runs this in its own loop; the daemon's listener runs another loop in
            # another thread. The blocking LMTP call goes to a worker thread so this loop
            # stays free (it would not deadlock anyway: the two loops share nothing).
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, self._deliver, envelope.mail_from, local, raw)
            except (OSError, smtplib.SMTPException) as exc:
                return f"451 4.4.0 could not hand the message to mailbot: {exc}"
        self.messages.append(Relayed(envelope.mail_from, tuple(envelope.rcpt_tos), raw))
        return "250 OK"

    def _deliver(self, mail_from: str, local: list[str], raw: bytes) -> None:
        if self.lmtp_port is None:
            raise OSError("the daemon is not listening yet")
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as client:
            for rcpt in local:
                client.sendmail(mail_from, [rcpt], raw)


def _overlapping_tick(record: logging.LogRecord) -> bool:
    """The demo's outbox tick is a quarter second; a tick still relaying when the next is
    due makes APScheduler skip that one and say so. Expected here, so not shown."""
    return "maximum number of running instances" not in record.getMessage()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _register(store: Store, samples: dict) -> None:
    # One store serves both sides here: the issuer verifies against it and the contractor
    # finds the issuer of a number in it. Real deployments have one store per organisation.
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
    for case in NOTIFICATIONS:
        if case.registered_key is not None:
            f = case.fields
            events.append(GuaranteeEvent(
                f.guarantee_number, "new", case.registered_key, kind=f.kind, issuer=ISSUER,
                contractor=f.contractor, project_name=f.project_name, source=f"demo:{case.name}"))
    store.apply(events)


def _notification_mail(case: Notification) -> bytes:
    """The surety's 「電子保証（認証キー）発行完了のお知らせ」 with the notice PDF attached.
    The text names no issuer: the contractor side must find it by other means."""
    f = case.fields
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = f"保証事業会社（デモ） <{SURETY_ADDR}>"
    msg["To"] = CONTRACTOR_ADDR
    msg["Subject"] = "電子保証（認証キー）発行完了のお知らせ"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(case.name, "hosho.example.jp")
    msg.set_content(f"{f.contractor} 御中\n\n電子保証を発行しました。\n工事名：{f.project_name}\n"
                    "添付の「認証キー」のお知らせをご確認ください。\n")
    msg.add_attachment(render_notice_pdf(f, font="cid"), maintype="application",
                       subtype="pdf", filename="電子保証にかかる「認証キー」のお知らせ.pdf")
    return msg.as_bytes()


def _count(store: Store, table, *where) -> int:  # noqa: ANN001
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _complete(store: Store) -> bool:
    """Every issuer-side mail decided and answered, every notice's submission final, every
    staff alert sent and nothing left in the outbox."""
    issuer_mails = len(CASES) + sum(c.expected != "unroutable" for c in NOTIFICATIONS)
    alerts = sum(c.expected != "confirmed" for c in NOTIFICATIONS)
    return (
        _count(store, ledger, ledger.c.mailbox == "keiyaku",
               ledger.c.state.in_(("decided", "replied"))) == issuer_mails
        and _count(store, outbox, outbox.c.kind == "reply",
                   outbox.c.state == "sent") == issuer_mails
        and _count(store, submissions, submissions.c.state.in_(FINAL)) == len(NOTIFICATIONS)
        and _count(store, outbox, outbox.c.kind == "alert", outbox.c.state == "sent") == alerts
        and _count(store, outbox, outbox.c.state == "queued") == 0
        and _count(store, ledger, ledger.c.state.not_in(("decided", "replied"))) == 0
    )


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
    store = Store.open(config.store_url or "", secret=SECRET)
    _register(store, samples)
    daemon = Daemon(config, store, workers=2, outbox_seconds=0.25)
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    scheduler_log.addFilter(_overlapping_tick)
    thread = threading.Thread(target=lambda: (daemon.start(), daemon.run()), daemon=True)
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
            if _complete(store):
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
    issuer_missing = _report_issuer(store, samples, relay.messages, dirs["replies"])
    contractor_missing = _report_contractor(store, config, relay.messages, dirs)
    store.close()
    print(f"\ndone in {time.monotonic() - started:.1f} s; open a mail with any mail program, "
          f"e.g. `python3 -c \"import sys,email.policy;print(email.message_from_binary_file("
          f"open(sys.argv[1],'rb'),policy=email.policy.default).get_body(('plain',))"
          f".get_content())\" FILE`")
    if issuer_missing or contractor_missing or not complete:
        print("some mails got no reply or no final state in time", file=sys.stderr)
        return 1
    return 0


def _parsed(raw: bytes):  # noqa: ANN202
    return message_from_bytes(raw, policy=policy.default)


def _header(raw: bytes, name: str) -> str:
    return str(_parsed(raw).get(name, "")).strip()


def _report_issuer(store: Store, samples: dict, sent: list[Relayed], replies_dir: Path) -> int:
    import json

    by_parent_id = {_header(m.raw, "In-Reply-To"): m.raw for m in sent}
    with store.engine.connect() as conn:
        rows = {r.message_id.strip() if r.message_id else "": r for r in conn.execute(select(ledger))}
    print(f"\nissuer side ({INBOX}):")
    print(f"{'mail':<26}{'shows':<26}{'decision':<13}{'outcomes / problems':<34}reply")
    missing = 0
    for index, (name, what, _how) in enumerate(CASES, 1):
        message_id = _header(samples[name].data, "Message-ID")
        row = rows.get(message_id)
        record = json.loads(row.decision) if row is not None and row.decision else {}
        codes = record.get("outcomes", []) + [p["code"] for p in record.get("problems", [])]
        raw = by_parent_id.get(message_id)
        reply_name = "-"
        if raw is not None:
            reply_name = f"replies/{index:02d}_{name}.eml"
            (replies_dir.parent / reply_name).write_bytes(raw)
        else:
            missing += 1
        print(f"{name:<26}{what:<26}{record.get('status', 'undecided'):<13}"
              f"{', '.join(codes) or '-':<34}{reply_name}")
    print(f"{len(CASES) - missing}/{len(CASES)} replies written to {replies_dir}/")
    return missing


def _pad(text: str, width: int) -> str:
    """`text` padded to `width` terminal columns (full-width characters count two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - used, 1)


def _answer_codes(raw: bytes | None, number: str) -> str:
    """What the issuer's mailbot said about `number` (its X-Mailbot-Result header)."""
    if raw is None:
        return "-"
    for part in _header(raw, "X-Mailbot-Result").split(";"):
        name, _, codes = part.strip().partition("=")
        if name == number:
            return codes.replace("+", ", ")
    return "?"


def _alert_name(raw: bytes) -> str:
    """A staff alert's file name: the notice whose number it names."""
    body = _parsed(raw).get_body(("plain",))
    text = body.get_content() if body is not None else ""
    for index, case in enumerate(NOTIFICATIONS, 1):
        if case.fields.guarantee_number in text:
            return f"{index:02d}_{case.name}.eml"
    return f"00_{_header(raw, 'Message-ID').strip('<>').split('@')[0]}.eml"


def _report_contractor(store: Store, config: Config, sent: list[Relayed],
                       dirs: dict[str, Path]) -> int:
    with store.engine.connect() as conn:
        rows = {r.guarantee_number: r for r in conn.execute(select(submissions))}
    by_id = {_header(m.raw, "Message-ID"): m.raw for m in sent}
    by_parent_id = {_header(m.raw, "In-Reply-To"): m.raw for m in sent}
    print(f"\ncontractor side ({CONTRACTOR_ADDR}):")
    print(f"{'notice':<20}{'shows':<26}{'submission':<13}{'issuer answered':<17}{'issuer':<9}"
          "subject of the submission mail")
    missing = 0
    for index, case in enumerate(NOTIFICATIONS, 1):
        row = rows.get(case.fields.guarantee_number)
        state = row.state if row is not None else "none"
        if state != case.expected:
            missing += 1
        issuer = "-"
        if row is not None and row.issuer:
            issuer = config.issuers[row.issuer].name or row.issuer
        message_id = (row.message_id or "").strip() if row is not None else ""
        submitted = by_id.get(message_id) if message_id else None
        answer = by_parent_id.get(message_id) if message_id else None
        stem = dirs["submissions"] / f"{index:02d}_{case.name}"
        if submitted is not None:
            stem.with_suffix(".eml").write_bytes(submitted)
        if answer is not None:
            stem.with_suffix(".answer.eml").write_bytes(answer)
        subject = row.subject if row is not None and submitted is not None else None
        print(f"{case.name:<20}{case.shows:<26}{state:<13}"
              f"{_answer_codes(answer, case.fields.guarantee_number):<17}"
              f"{_pad(issuer, 9)}{subject or '-'}")
    alerts = sorted((_alert_name(m.raw), m.raw) for m in sent if STAFF in m.rcpt_tos)
    for name, raw in alerts:
        (dirs["staff"] / name).write_bytes(raw)
        print(f"  staff alert staff/{name}: {_header(raw, 'Subject')}")
    print(f"{len(NOTIFICATIONS) - missing}/{len(NOTIFICATIONS)} notices reached the expected "
          f"state; submissions and the issuer's answers written to {dirs['submissions']}/, "
          f"{len(alerts)} staff alerts to {dirs['staff']}/")
    return missing

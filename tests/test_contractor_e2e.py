"""Both sides in one Dovecot: the contractor's mailbot submits, the issuer's answers.

Two daemons of this build, each with its own store and spool: the contractor's watches
contractor@maru.example.jp (IMAP), the issuer's keiyaku@issuer.example.jp (IMAP). A relay
(aiosmtpd) hands mail for those two to Dovecot over LMTP and records everything, so staff
mail can be inspected. A notice from the surety reaches the contractor's queue; it is
submitted in the issuer's form, verified by the issuer's side, answered, and the answer is
recorded against the submission. The kill test runs the contractor side as `mailbot run`
in a subprocess and SIGKILLs it while the relay holds the submission's final 250.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from mailbot.auth import Requirement
from mailbot.config import load_config
from mailbot.samples.notice_pdf import NoticeFields, render_notice_pdf
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import ledger, outbox, submissions

from .conftest import CONTRACTOR_ADDRESS, ISSUER_ADDRESS, TEST_SECRET
from .notices import NOTICE_NAME, mail_with
from .servers import free_port
from .test_daemon import Running, wait_for

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

STAFF = "jimu@maru.example.jp"
KEY = "Z28YUEAJ38ux"
ALL_HOURS = ('start = "00:00"\nend = "23:59:59"\n'
             'weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
             "skip_holidays = false\nyear_end_closed = false\n")


class Relay:
    """The organisation's relay: mail for Dovecot's users goes there over LMTP (before the
    250, as a real MTA has accepted a message once it answers DATA); everything is kept."""

    def __init__(self, dovecot) -> None:
        self.dovecot = dovecot
        self.accepted: list[tuple[str, list[str], bytes]] = []
        self.hold_submission = 0.0  # seconds to sit on a submission's final answer
        self.holding = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or envelope.content
        self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), raw))
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.dovecot.users:
                self.dovecot.deliver(rcpt, raw, sender=envelope.mail_from)
        if self.hold_submission and b"X-Mailbot-Submission" in raw:
            hold, self.hold_submission = self.hold_submission, 0.0
            self.holding.set()
            await asyncio.sleep(hold)
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default)
                for _sender, rcpts, raw in self.accepted if address in rcpts]


@pytest.fixture
def relay(dovecot):
    handler = Relay(dovecot)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


def surety_mail(number: str, key: str, project: str, kind: str = "前払金保証") -> bytes:
    """The surety's 「認証キーのお知らせ」 with the notice PDF, as the contractor receives it."""
    pdf = render_notice_pdf(NoticeFields(number, key, kind, project, "〇〇建設株式会社",
                                         "東日本建設業保証株式会社"))
    return mail_with("info@hosho.example.jp", CONTRACTOR_ADDRESS,
                     "電子保証（認証キー）発行完了のお知らせ",
                     "〇〇建設株式会社 御中\n\n電子保証の認証キーのお知らせを添付します。\n",
                     [(pdf, NOTICE_NAME, "application/pdf")]).as_bytes()


def _configs(tmp_path, dovecot, relay, resolver: str) -> tuple:
    issuer_url = f"sqlite:///{tmp_path / 'issuer.db'}"
    contractor_url = f"sqlite:///{tmp_path / 'contractor.db'}"
    imap = (f'kind = "imap"\nhost = "127.0.0.1"\nport = {dovecot.imap_port}\ntls = "none"\n'
            'password_env = "MAILBOT_TEST_IMAP_PASSWORD"\npoll_seconds = 1\n')
    issuer = (
        f'[store]\nurl = "{issuer_url}"\n[spool]\ndir = "{tmp_path / "issuer-spool"}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {relay.port}\nfrom = "{ISSUER_ADDRESS}"\n'
        "flush_seconds = 1\n"
        '[send_window]\nimmediate = ["confirmation", "discrepancy"]\n[digest]\nenabled = false\n'
        f'[issuers.city]\nname = "〇〇市"\nreply_from = "{ISSUER_ADDRESS}"\n'
        'reply_name = "〇〇市 契約検査課"\n'
        f'[[mailboxes]]\nname = "keiyaku"\nrole = "issuer"\nissuer = "city"\n{imap}'
        f'user = "{ISSUER_ADDRESS}"\n'
    )
    contractor = (
        f'[store]\nurl = "{contractor_url}"\n[spool]\ndir = "{tmp_path / "contractor-spool"}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {relay.port}\nfrom = "{CONTRACTOR_ADDRESS}"\n'
        "flush_seconds = 1\n[digest]\nenabled = false\n"
        f'[contractor]\nname = "〇〇建設株式会社"\nfrom = "{CONTRACTOR_ADDRESS}"\n'
        f'person = "工務部 〇〇"\ncontact = "03-0000-0000"\nstaff = ["{STAFF}"]\n'
        '[issuers.city]\nname = "〇〇市"\n'
        f'[issuers.city.submission]\nto = "{ISSUER_ADDRESS}"\n'
        'subject = "【電子保証】{{ project_no }} {{ project_name }}"\n'
        f"[issuers.city.submission.window]\n{ALL_HOURS}"
        '[[projects]]\nname = "浄水場"\nproject = "浄水場"\nproject_no = "R8-015"\n'
        f'[[mailboxes]]\nname = "queue"\nrole = "contractor"\n{imap}'
        f'user = "{CONTRACTOR_ADDRESS}"\n'
        # The issuer's answers come straight from its daemon, signed by nobody: these tests
        # are about the submission's path (the signed one is test_contractor_auth_e2e.py).
        # The daemon may run in a child process: it asks the tests' loopback DNS server too.
        f'[auth]\nrequire = "none"\nresolvers = ["{resolver}"]\n'
    )
    (tmp_path / "issuer.toml").write_text(issuer, encoding="utf-8")
    (tmp_path / "contractor.toml").write_text(contractor, encoding="utf-8")
    issuer_store = Store.open(issuer_url, secret=TEST_SECRET)
    contractor_store = Store.open(contractor_url, secret=TEST_SECRET)
    # The issuer registered 00001 with the key the notice carries, 00002 with another one.
    issuer_store.apply([
        GuaranteeEvent("35075-00001M", "new", KEY, issuer="〇〇市", source="t"),
        GuaranteeEvent("35075-00002M", "new", "OtherKey1234", issuer="〇〇市", source="t"),
    ])
    # The contractor's own register knows which body each guarantee is for.
    contractor_store.apply([
        GuaranteeEvent(f"35075-0000{i}M", "new", KEY, issuer="〇〇市", source="t")
        for i in (1, 2)
    ])
    return issuer_store, contractor_store


def contractor_config(tmp_path):  # noqa: ANN001, ANN201
    """contractor.toml, with its `[auth] require = "none"` in force for the in-process daemon
    whatever the config reader of this build makes of it."""
    config = load_config(tmp_path / "contractor.toml")
    return replace(config, auth=replace(config.auth, require=Requirement.NONE))


def rows(store: Store, table) -> list:  # noqa: ANN001
    with store.engine.connect() as conn:
        return list(conn.execute(select(table).order_by(table.c.id)))


@pytest.fixture
def sides(dovecot, relay, tmp_path, monkeypatch, no_system_resolver):
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "secret")
    issuer_store, contractor_store = _configs(tmp_path, dovecot, relay,
                                              no_system_resolver.address)
    yield issuer_store, contractor_store
    issuer_store.close()
    contractor_store.close()


def test_submission_is_verified_answered_and_recorded(sides, dovecot, relay, tmp_path):
    issuer_store, contractor_store = sides
    dovecot.deliver(CONTRACTOR_ADDRESS, surety_mail("35075-00001M", KEY, "〇〇浄水場△△修繕工事"))
    dovecot.deliver(CONTRACTOR_ADDRESS, surety_mail("35075-00002M", KEY, "〇〇浄水場□□更新工事",
                                                    kind="契約保証"))
    with (Running(load_config(tmp_path / "issuer.toml"), issuer_store),
          Running(contractor_config(tmp_path), contractor_store)):
        wait_for(lambda: {r.state for r in rows(contractor_store, submissions)}
                 == {"confirmed", "discrepancy"}, 120, "both answers recorded")
        wait_for(lambda: relay.to(STAFF), 30, "the staff alert about the discrepancy")

    subs = {r.guarantee_number: r for r in rows(contractor_store, submissions)}
    assert subs["35075-00001M"].state == "confirmed"
    assert subs["35075-00002M"].state == "discrepancy"
    for sub in subs.values():
        assert sub.issuer == "city" and sub.found_by == "store"
        assert json.loads(sub.answer)["how"] == "thread"

    # The submission: the issuer's address, its subject rule, the required lines, the PDF.
    submitted = relay.to(ISSUER_ADDRESS)
    assert len(submitted) == 2
    first = next(m for m in submitted if m["X-Mailbot-Submission"] == "35075-00001M")
    assert str(first["Subject"]) == "【電子保証】R8-015 〇〇浄水場△△修繕工事"
    assert first["From"].addresses[0].addr_spec == CONTRACTOR_ADDRESS
    assert first["Auto-Submitted"] is None  # the issuer is meant to answer it
    body = first.get_body(("plain",)).get_content()
    for line in ("受注者：〇〇建設株式会社", "担当者氏名・連絡先：工務部 〇〇 03-0000-0000",
                 "工事名：〇〇浄水場△△修繕工事", "保証名称：前払金保証"):
        assert line in body
    [pdf] = [p for p in first.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "認証キーのお知らせ.pdf"

    # The issuer side decided each once and replied in the submission's thread.
    decided = [json.loads(r.decision) for r in rows(issuer_store, ledger)]
    assert sorted(d["status"] for d in decided) == ["discrepancy", "verified"]
    answers = relay.to(CONTRACTOR_ADDRESS)
    assert {str(m["In-Reply-To"]) for m in answers} == {s.message_id for s in subs.values()}

    # The discrepancy reached the contractor's staff, with the issuer's explanation.
    [alert] = relay.to(STAFF)
    text = alert.get_body(("plain",)).get_content()
    assert "35075-00002M" in text and "相違あり" in text
    assert "認証キー" in text  # the excerpt of the issuer's explanation
    assert KEY not in text
    # Each contractor-side mail is filed: the notices and the confirmation as done.
    states = {json.loads(r.decision)["status"] for r in rows(contractor_store, ledger)}
    assert states == {"submitted", "answer"}


def test_same_notice_twice_is_submitted_once(sides, dovecot, relay, tmp_path):
    issuer_store, contractor_store = sides
    mail = surety_mail("35075-00001M", KEY, "〇〇浄水場△△修繕工事")
    forwarded = mail.replace(b"info@hosho.example.jp", b"tanto@maru.example.jp").replace(
        b"Message-ID: <", b"Message-ID: <fwd.", 1)
    dovecot.deliver(CONTRACTOR_ADDRESS, mail)
    dovecot.deliver(CONTRACTOR_ADDRESS, forwarded)
    with (Running(load_config(tmp_path / "issuer.toml"), issuer_store),
          Running(contractor_config(tmp_path), contractor_store)):
        wait_for(lambda: [r.state for r in rows(contractor_store, submissions)] == ["confirmed"],
                 120, "the one submission confirmed")
        wait_for(lambda: len(rows(contractor_store, ledger)) == 3, 30, "the answer recorded")
    statuses = sorted(json.loads(r.decision)["status"] for r in rows(contractor_store, ledger))
    assert statuses == ["answer", "duplicate", "submitted"]
    assert len(relay.to(ISSUER_ADDRESS)) == 1
    assert len(rows(contractor_store, outbox)) == 1


def test_kill_9_while_sending_gives_one_submission(sides, dovecot, relay, tmp_path):
    issuer_store, contractor_store = sides
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode(),
           "MAILBOT_TEST_IMAP_PASSWORD": "secret"}
    command = [sys.executable, "-m", "mailbot.cli", "run", "--config",
               str(tmp_path / "contractor.toml"), "--workers", "1"]
    relay.hold_submission = 30  # the relay has the message but sits on its 250
    dovecot.deliver(CONTRACTOR_ADDRESS, surety_mail("35075-00001M", KEY, "〇〇浄水場△△修繕工事"))
    with open(tmp_path / "contractor.log", "ab") as log, \
            Running(load_config(tmp_path / "issuer.toml"), issuer_store):
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            wait_for(relay.holding.is_set, 90, "the submission at the relay")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        [claimed] = rows(contractor_store, outbox)
        assert claimed.state == "queued" and claimed.claimed_at is not None  # mid-send
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: [r.state for r in rows(contractor_store, submissions)]
                     == ["confirmed"], 120, "the submission confirmed after the restart")
            wait_for(lambda: len(rows(issuer_store, ledger)) == 2
                     and all(r.state != "received" for r in rows(issuer_store, ledger))
                     and rows(contractor_store, outbox)[0].state == "sent", 60,
                     "the second copy filed at the issuer")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    # The relay got it twice (the first 250 was lost with the process) …
    assert len(relay.to(ISSUER_ADDRESS)) == 2
    assert len({m["Message-ID"] for m in relay.to(ISSUER_ADDRESS)}) == 1
    # … and it is one submission: one row, one decision at the issuer, one answer.
    assert len(rows(contractor_store, submissions)) == 1
    [sent] = rows(contractor_store, outbox)
    assert (sent.state, sent.attempts) == ("sent", 2)  # the interrupted send counts one
    statuses = sorted(json.loads(r.decision)["status"] for r in rows(issuer_store, ledger))
    assert statuses == ["duplicate", "verified"]
    assert len(relay.to(CONTRACTOR_ADDRESS)) == 1

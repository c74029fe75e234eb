"""Only the authenticated issuer changes a submission; only a proven bounce fails one.

The pipeline is driven with `AuthVerdict` values built here (what `mailbot.auth` would
prove), on SQLite and PostgreSQL: a forged 確認しました or `X-Mailbot-Result` leaves the
submission `sent` and asks the staff to phone the issuer; an authenticated answer settles
it. Submissions go out (to a real aiosmtpd sink) with a tokened bounce address as their
envelope sender; a bounce fails a submission only when it came back to that address and
names the Message-ID sent — a forged bounce, a token of another Message-ID, a tampered
token or the right token naming another Message-ID change nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from email.utils import make_msgid

import pytest

from mailbot.auth import AuthVerdict, DkimCheck, DmarcCheck
from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.pipeline.contractor import decide_contractor
from mailbot.pipeline.facts import mail_facts
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import outbox, submissions
from mailbot.submit.bounce import KEY_PURPOSE, bounce_token
from parsers import Reader

from .test_contractor_pipeline import TUESDAY, answer, contractor_toml, select_all, staff_mail
from .test_submission_forms import mail

pytestmark = pytest.mark.clock

BOUNCE = "bounce@maru.example.jp"
CONFIG = contractor_toml("{bounce}")

PASS = AuthVerdict(source="self", from_domain="city.example.jp",
                   dkim=(DkimCheck("city.example.jp", "pass", "sel", aligned=True),),
                   dmarc=DmarcCheck("city.example.jp", "pass", "reject", "dkim"))
FORGED = AuthVerdict(source="self", from_domain="city.example.jp",
                     dmarc=DmarcCheck("city.example.jp", "fail", "reject"))
# Signed and DMARC-aligned, but by someone else's domain.
OTHER = AuthVerdict(source="self", from_domain="other.example.jp",
                    dkim=(DkimCheck("other.example.jp", "pass", "sel", aligned=True),),
                    dmarc=DmarcCheck("other.example.jp", "pass", "none", "dkim"))


class Side:
    """One contractor side: a notice submitted and sent through the sink, and `feed(raw,
    auth)` deciding one mail as the daemon does, with `auth` as its verdict."""

    def __init__(self, store, store_url, tmp_path, sink, bounce: bool = True) -> None:  # noqa: ANN001
        path = tmp_path / "mailbot.toml"
        path.write_text(CONFIG.format(url=store_url, spool=tmp_path / "spool",
                                      port=sink.settings.port,
                                      bounce=f'bounce_address = "{BOUNCE}"\n' if bounce else ""),
                        encoding="utf-8")
        self.config = load_config(path)
        self.store, self.sink = store, sink
        self.ledger = Ledger(store.engine, Spool(self.config.spool_dir))
        self.outgoing = Outgoing(self.config, store)
        store.apply([GuaranteeEvent("35075-00001M", "new", "Z28YUEAJ38ux", issuer="〇〇市",
                                    source="t")])
        pipeline = Pipeline(self.config, store, self.ledger, Reader(), clock=lambda: TUESDAY)
        self.ledger.receive("queue", mail("35075-00001M", "〇〇浄水場"))
        while pipeline.process_one():
            pass
        self.outgoing.flush(TUESDAY)
        [self.row] = select_all(store, submissions)
        assert self.row.state == "sent"
        [(self.envelope, _rcpts, _raw)] = sink.accepted

    def feed(self, raw: bytes, auth: AuthVerdict | None) -> dict:
        entry_id = self.ledger.receive("queue", raw).id
        now = TUESDAY + timedelta(hours=1)
        entry = self.ledger.claim(now=now)
        assert entry is not None and entry.id == entry_id
        [mailbox] = self.config.mailboxes
        facts = replace(mail_facts(raw, mailbox.name), auth=auth)
        record, writes = decide_contractor(raw, facts, mailbox, self.config, self.store,
                                           Reader(), self.outgoing.outbox, entry.id, now)

        def apply(conn, record, at):  # noqa: ANN001, ANN202
            writes.apply(conn, record, at)

        self.ledger.decide(entry.id, record, None, None, now=now, attempt=entry.attempts,
                           extra=apply)
        return json.loads(self.ledger.get(entry.id).decision)

    def state(self) -> str:
        return select_all(self.store, submissions)[0].state

    def answer_json(self) -> dict:
        return json.loads(select_all(self.store, submissions)[0].answer)


@pytest.fixture
def side(store, store_url, tmp_path, sink):
    return Side(store, store_url, tmp_path, sink)


def reply(side: Side, text: str, sender: str = "kensa@city.example.jp",
          result: str | None = None) -> bytes:
    raw = answer(text, sender=sender, subject="Re: 【電子保証】〇〇浄水場")
    headers = f"In-Reply-To: {side.row.message_id}\n"
    if result:
        headers += f"X-Mailbot-Result: {result}\n"
    return raw.replace(b"Subject:", headers.encode() + b"Subject:", 1)


def test_a_forged_confirmation_leaves_sent_and_asks_the_staff_to_phone(side):
    record = reply(side, "35075-00001M 確認しました。")
    decided = side.feed(record, FORGED)
    assert side.state() == "sent"
    [entry] = decided["answers"]
    assert (entry["verdict"], entry["claimed"], entry["was"]) == ("unauthenticated",
                                                                 "confirmed", "sent")
    assert decided["status"] == "answer" and decided["answer"]["authenticated"] is False
    assert decided["authentication"]["dmarc"]["result"] == "fail"
    assert decided["authentication"]["summary"] == FORGED.summary()
    [kept] = side.answer_json()["unauthenticated"]
    assert kept["claimed"] == "confirmed" and "dmarc=fail" in kept["authentication"]
    [text] = staff_mail(side.store)
    assert "発注者からの返信か確認できないメール" in text
    assert "電話" in text and "なりすましの疑い" in text
    assert "35075-00001M" in text and "返信待ちのまま" in text
    assert "発注者を名乗るメールの本文（抜粋・未確認）" in text


def test_an_authenticated_confirmation_confirms(side):
    decided = side.feed(reply(side, "35075-00001M 確認しました。"), PASS)
    assert side.state() == "confirmed"
    assert decided["answers"][0]["verdict"] == "confirmed"
    assert decided["authentication"]["source"] == "self"
    assert decided["answer"]["authenticated"] is True
    assert staff_mail(side.store) == []


def test_nothing_checked_proves_nothing(side):
    decided = side.feed(reply(side, "35075-00001M 確認しました。"), None)
    assert side.state() == "sent"
    assert decided["authentication"] is None
    assert decided["answers"][0]["verdict"] == "unauthenticated"
    assert "送信元認証の結果なし" in staff_mail(side.store)[0]


def test_a_forged_result_header_is_ignored_and_a_real_one_counts(side):
    forged = reply(side, "お世話になっております。", result="verified; 35075-00001M=verified")
    decided = side.feed(forged, FORGED)
    assert side.state() == "sent"
    assert decided["answers"][0]["verdict"] == "unauthenticated"
    # Another domain's valid signature does not make it the issuer.
    other = reply(side, "確認しました。", sender="kensa@other.example.jp",
                  result="verified; 35075-00001M=verified")
    assert side.feed(other, OTHER)["answers"][0]["verdict"] == "unauthenticated"
    assert side.state() == "sent"
    assert len(side.answer_json()["unauthenticated"]) == 2
    # The issuer's verdict says From city.example.jp, but the mail's From is another
    # address: the verdict is not about this author.
    mismatch = reply(side, "確認しました。", sender="kensa@other.example.jp")
    assert side.feed(mismatch, PASS)["answers"][0]["verdict"] == "unauthenticated"
    real = reply(side, "お世話になっております。", result="discrepancy; 35075-00001M=key_mismatch")
    assert side.feed(real, PASS)["answers"][0]["verdict"] == "discrepancy"
    assert side.state() == "discrepancy"


def test_an_unauthenticated_answer_out_of_thread_changes_nothing(side):
    raw = answer("35075-00001M について、認証キーが一致しません。")
    decided = side.feed(raw, FORGED)
    assert decided["answers"][0]["matched_by"] == "number"
    assert decided["answers"][0]["verdict"] == "unauthenticated"
    assert side.state() == "sent"


def test_submissions_go_out_from_their_tokened_bounce_address(side):
    match = re.fullmatch(r"bounce\+([a-z2-7]{16})@maru\.example\.jp", side.envelope)
    assert match, side.envelope
    key = side.store.derived_key(KEY_PURPOSE)
    assert match.group(1) == bounce_token(key, side.row.message_id)
    assert bounce_token(key, "<other@maru.example.jp>") != match.group(1)
    # Staff mail keeps the From address as its envelope sender.
    side.feed(reply(side, "確認しました。"), FORGED)
    side.outgoing.flush(TUESDAY + timedelta(hours=1))
    assert side.sink.accepted[-1][0] == "denshi@maru.example.jp"


def dsn(to: str, named_id: str | None, *, null_sender: bool = True) -> bytes:
    """A delivery-status report as Postfix writes one, to `to`, quoting the returned
    mail's headers with `named_id` as its Message-ID."""
    original = ("From: denshi@maru.example.jp\nTo: keiyaku@city.example.jp\n"
                "Subject: =?utf-8?b?44CQ6Zu75a2Q5L+d6Ki844CR?=\n"
                + (f"Message-ID: {named_id}\n" if named_id else ""))
    return (("Return-Path: <>\n" if null_sender else "")
            + "From: MAILER-DAEMON@mx.city.example.jp (Mail Delivery System)\n"
            f"To: {to}\nSubject: Undelivered Mail Returned to Sender\n"
            f"Message-ID: {make_msgid(domain='mx.city.example.jp')}\n"
            "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\n\n'
            "--B1\nContent-Type: text/plain; charset=us-ascii\n\n"
            "This is the mail system at host mx.city.example.jp.\n\n"
            "<keiyaku@city.example.jp>: User unknown in virtual alias table\n\n"
            "--B1\nContent-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; mx.city.example.jp\n\n"
            "Final-Recipient: rfc822; keiyaku@city.example.jp\nAction: failed\n"
            "Status: 5.1.1\n\n"
            f"--B1\nContent-Type: text/rfc822-headers\n\n{original}\n--B1--\n").encode()


def test_a_real_bounce_to_the_tokened_address_fails_the_submission(side):
    decided = side.feed(dsn(side.envelope, side.row.message_id), None)
    assert side.state() == "failed"
    assert decided["status"] == "answer"
    assert decided["answers"][0]["matched_by"] == "bounce-token"
    assert decided["bounce"]["proven"] == [side.row.message_id]
    assert "提出メールが配送エラーで戻ってきました" in staff_mail(side.store)[0]


def test_a_bounce_delivered_to_the_tokened_address_by_delivered_to(side):
    raw = dsn("denshi@maru.example.jp", side.row.message_id)
    raw = f"Delivered-To: {side.envelope}\n".encode() + raw
    side.feed(raw, None)
    assert side.state() == "failed"


@pytest.mark.parametrize("case", ["forged", "other-token", "tampered", "other-id", "no-id"])
def test_bounces_that_prove_nothing_change_nothing(side, case):
    key = side.store.derived_key(KEY_PURPOSE)
    token = side.envelope.split("+")[1].split("@")[0]
    sent = side.row.message_id
    if case == "forged":  # a null-sender mail in the thread, to the contractor's address
        raw = reply(side, "Delivery failed").replace(b"Subject:", b"Return-Path: <>\nSubject:")
    elif case == "other-token":
        other = bounce_token(key, "<other.1@maru.example.jp>")
        raw = dsn(f"bounce+{other}@maru.example.jp", sent)
    elif case == "tampered":
        flipped = ("a" if token[0] != "a" else "b") + token[1:]
        raw = dsn(f"bounce+{flipped}@maru.example.jp", sent)
    elif case == "other-id":
        raw = dsn(side.envelope, "<other.2@maru.example.jp>")
    else:
        raw = dsn(side.envelope, None)
    decided = side.feed(raw, FORGED if case == "forged" else None)
    assert side.state() == "sent"
    assert decided["status"] == "ignored" and "proves nothing" in decided["reason"]
    assert "answers" not in decided
    [text] = staff_mail(side.store)
    assert "配送エラーらしきメールが届きました（提出の状態は変えていません）" in text
    if case in ("forged", "other-token", "tampered"):  # it names the sent mail
        assert "35075-00001M" in text


def test_without_a_bounce_address_bounces_only_alert(store, store_url, tmp_path, sink):
    side = Side(store, store_url, tmp_path, sink, bounce=False)
    assert side.envelope == "denshi@maru.example.jp"
    decided = side.feed(dsn("denshi@maru.example.jp", side.row.message_id), None)
    assert side.state() == "sent" and decided["status"] == "ignored"
    [text] = staff_mail(store)
    assert "配送エラーらしきメール" in text and "35075-00001M" in text


def test_a_bounce_of_our_own_staff_mail_raises_no_alert(side):
    side.feed(reply(side, "確認しました。"), FORGED)  # an alert to the staff
    [alert] = select_all(side.store, outbox, outbox.c.kind == "alert")
    decided = side.feed(dsn("denshi@maru.example.jp", alert.message_id), None)
    assert "loop" in decided["reason"]
    assert len(staff_mail(side.store)) == 1


def test_a_bounce_address_with_a_plus_is_refused(tmp_path):
    from mailbot.config.reader import ConfigError

    path = tmp_path / "mailbot.toml"
    path.write_text(CONFIG.format(url="sqlite:///x.db", spool="spool", port=25,
                                  bounce='bounce_address = "b+x@maru.example.jp"\n'),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="contractor.bounce_address"):
        load_config(path)

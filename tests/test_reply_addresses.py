"""Replies go only to valid RFC 5322 mailboxes; any other address gets none, and the decision
says why.

Hostile header addresses (control characters, encoded words, `|` in the domain, nested
comments, no domain, a 65-character label, 255+ characters, odd quoted local parts, domain
literals) go through `mail_facts` and `decide` as the daemon sends them; the valid oddities
(quoted local parts of Japanese mobile addresses, IDN in A-labels, encoded display names)
still get their reply, at the address normalised for SMTP. One end-to-end run through
Dovecot, the daemon and the relay shows that no reply leaves for an invalid address and
that its decision records the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailbot.addresses import Unanswerable, reply_address
from mailbot.config import load_config
from mailbot.pipeline.decide import decide, reply_blocked
from mailbot.pipeline.facts import mail_facts
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import outbox
from parsers import Reader

from .configs import issuer_config
from .issuer_daemon import accepted, decision, issuer_daemon, settled
from .test_contractor_pipeline import make_side, select_all
from .test_daemon import USER, wait_for
from .test_submission_forms import mail as submission_mail

KEY = "Z28YUEAJ38ux"
UNANSWERABLE = "cannot be answered by SMTP"


def raw_mail(sender: str, number: int = 1, tag: str = "a") -> bytes:
    """A typed notice from `sender`, the header written as given (bytes and all)."""
    return (f"From: {sender}\r\nTo: {USER}\r\nSubject: 【電子保証】〇〇浄水場△△修繕工事\r\n"
            f"Message-ID: <{tag}{number}.addr@maru-kensetsu.example.jp>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"〇〇市 契約検査課 御中\r\n\r\n保証契約番号：35075-{number:05d}M\r\n"
            f"認証キー：{KEY}\r\n").encode("utf-8", "surrogateescape")


@pytest.fixture
def decide_for(store, store_url, tmp_path):
    """decide() on a mail from a given sender, the notice registered (it verifies)."""
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(store_url, tmp_path / "spool"), encoding="utf-8")
    config = load_config(path)
    mailbox = config.mailbox("keiyaku")
    store.apply([GuaranteeEvent("35075-00001M", "new", KEY, issuer="〇〇市", source="t")])
    reader = Reader()

    def run(sender: str):
        raw = raw_mail(sender)
        return decide(raw, mail_facts(raw, mailbox.name), mailbox, config, store, reader,
                      datetime.now(UTC))

    return run


HOSTILE = {
    "control character": "tanto\x01@maru-kensetsu.example.jp",
    "escape character": "tanto\x1b[31m@maru-kensetsu.example.jp",
    "DEL": "ta\x7fnto@maru-kensetsu.example.jp",
    "encoded word as the local part": "=?utf-8?b?55Sw5Lit?=@maru-kensetsu.example.jp",
    "pipe in the domain": "tanto@maru|kensetsu.example.jp",
    "no domain": "tanto@",
    "no at-sign": "tanto",
    "two at-signs": "tanto@evil.example.jp@maru-kensetsu.example.jp",
    "65-character label": f"tanto@{'k' * 65}.example.jp",
    "255+ characters": "t" * 60 + "@" + ".".join(["k" * 60] * 4) + ".jp",
    "65-character local part": "t" * 65 + "@maru-kensetsu.example.jp",
    "quoted local part with an at-sign": '"tanto@evil.example.jp"@maru-kensetsu.example.jp',
    "quoted local part with an escaped quote": '"tan\\"to"@maru-kensetsu.example.jp',
    "unquoted double dot": "taro..yamada@docomo.ne.jp",
    "domain literal": "tanto@[192.0.2.1]",
    "non-ASCII local part": "田中@maru-kensetsu.example.jp",
    "special-use domain": "tanto@maru-kensetsu.test",
    "numeric top-level domain": "tanto@192.0.2.1",
}

VALID = {
    "plain": ("tanto@maru-kensetsu.example.jp", "tanto@maru-kensetsu.example.jp"),
    "encoded display name": ("=?utf-8?b?5bel5YuZ6YOo?= <tanto@maru-kensetsu.example.jp>",
                             "tanto@maru-kensetsu.example.jp"),
    "quoted local part with a space": ('"tanto yamada"@maru-kensetsu.example.jp',
                                       '"tanto yamada"@maru-kensetsu.example.jp'),
    "quoted mobile address": ('"taro..yamada"@docomo.ne.jp', '"taro..yamada"@docomo.ne.jp'),
    "needless quotes": ('"tanto"@maru-kensetsu.example.jp', "tanto@maru-kensetsu.example.jp"),
    "IDN as A-labels": ("tanto@xn--r8jz45g.jp", "tanto@xn--r8jz45g.jp"),
    "63-character label": (f"tanto@{'k' * 63}.example.jp", f"tanto@{'k' * 63}.example.jp"),
    "64-character local part": ("t" * 64 + "@maru-kensetsu.example.jp",
                                "t" * 64 + "@maru-kensetsu.example.jp"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_no_reply_to_an_invalid_address_and_the_decision_says_why(decide_for, name):
    result = decide_for(HOSTILE[name])
    assert result.status == "verified"  # the notice is decided as any other
    assert result.reply is None and result.record["reply"] is None
    why = result.record["reply_skipped"]
    assert why == "no sender address" or UNANSWERABLE in why, why


@pytest.mark.parametrize("name", VALID)
def test_a_valid_address_gets_its_reply(decide_for, name):
    sender, to = VALID[name]
    result = decide_for(sender)
    assert result.reply is not None, result.record["reply_skipped"]
    assert result.reply.to_addr == to and result.record["reply"]["to"] == to


def test_nested_comments_are_no_part_of_the_address(decide_for):
    """RFC 5322 §3.2.2: comments may stand around the domain and are not part of it. The
    reply goes to the address without them, or (if the header parser cannot read it) to
    nobody, with the reason recorded; never to an address holding the comment."""
    result = decide_for("tanto@(x(y)z)maru-kensetsu.example.jp")
    if result.reply is None:
        assert result.record["reply_skipped"]
    else:
        assert result.reply.to_addr == "tanto@maru-kensetsu.example.jp"


@pytest.mark.parametrize(("address", "reason"), [
    ("tanto\x00@maru-kensetsu.example.jp", "U+0000"),
    ("tanto\x85@maru-kensetsu.example.jp", "U+0085"),  # C1
    ("tanto@maru\udce5.example.jp", "U+DCE5"),  # a raw byte kept as a surrogate
    ("tanto@\ufffd\ufffd.jp", "U+FFFD"),  # bytes replaced in decoding
    ("=?x-unknown?q?tanto?=@maru-kensetsu.example.jp", "RFC 2047"),
    ('"=?utf-8?q?tanto?="@maru-kensetsu.example.jp', "RFC 2047"),
    ("tanto@[IPv6:2001:db8::1]", "domain literal"),
    ("tanto@xn--zz.jp", "IDNA"),
    ("tanto@maru-kensetsu.example.jp.", "period"),
    ("tanto@" + "k" * 2000 + ".jp", "characters"),
    ('"tanto,yamada"@maru-kensetsu.example.jp', "quoted local part"),
    ('"tanto(x)"@maru-kensetsu.example.jp', "quoted local part"),
])
def test_reply_address_refuses_with_a_reason(address, reason):
    with pytest.raises(Unanswerable, match=reason.replace("(", r"\(").replace("+", r"\+")):
        reply_address(address)


@pytest.mark.parametrize(("address", "to"), [
    ("tanto@例え.jp", "tanto@xn--r8jz45g.jp"),  # IDN: sent as A-labels, no SMTPUTF8 needed
    ("tanto@〇〇建設.jp", "tanto@xn--w6ja1717a5dyb.jp"),
    ("tanto@★建設.jp", None),  # a symbol IDNA 2008 does not allow
    ("Tanto@Maru-Kensetsu.Example.JP", "Tanto@maru-kensetsu.example.jp"),
])
def test_reply_address_and_idn(address, to):
    if to is None:
        with pytest.raises(Unanswerable):
            reply_address(address)
    else:
        assert reply_address(address) == to


def test_robots_and_our_own_address_are_known_in_any_spelling():
    def facts(sender: str):
        return mail_facts(raw_mail(sender), "keiyaku")

    assert "robot" in reply_blocked(facts('"postmaster"@maru-kensetsu.example.jp'))
    assert reply_blocked(facts("Keiyaku@Issuer.Example.JP"),
                         ("keiyaku@issuer.example.jp",)) == "our own address"


def test_end_to_end_no_reply_leaves_for_an_invalid_address(dovecot, sink, tmp_path,
                                                           monkeypatch):
    events = [GuaranteeEvent(f"35075-{i:05d}M", "new", KEY, issuer="〇〇市", source="t")
              for i in (1, 2, 3)]
    mails = {
        "hostile": raw_mail("〇〇建設 <tanto@maru|kensetsu.example.jp>", 1, "e2e"),
        "valid": raw_mail("〇〇建設 <tanto@maru-kensetsu.example.jp>", 2, "e2e"),
        "quoted": raw_mail('"taro..yamada"@docomo.ne.jp', 3, "e2e"),
    }
    with issuer_daemon(dovecot, sink, tmp_path, monkeypatch, events) as (_config, store, _d):
        for raw in mails.values():
            dovecot.deliver(USER, raw)
        wait_for(lambda: settled(store, 3), 120, "three mails decided, filed and answered")
        replies = accepted(sink)
        refused = decision(store, "<e2e1.addr@maru-kensetsu.example.jp>")
        answered = decision(store, "<e2e2.addr@maru-kensetsu.example.jp>")
    assert len(replies) == 2 and all(r["X-Mailbot-Result"].startswith("verified")
                                     for r in replies)
    # smtplib sends RCPT TO:<"taro..yamada"@docomo.ne.jp>; aiosmtpd records the stdlib's
    # addr_spec of it, which drops the quotes. The To header as sent keeps them.
    assert sorted(rcpt for _f, rcpts, _raw in sink.accepted for rcpt in rcpts) == [
        "tanto@maru-kensetsu.example.jp", "taro..yamada@docomo.ne.jp"]
    assert any(b'\nTo: "taro..yamada"@docomo.ne.jp\r' in raw for _f, _t, raw in sink.accepted)
    assert refused["status"] == "verified" and refused["reply"] is None
    assert UNANSWERABLE in refused["reply_skipped"] and "'|'" in refused["reply_skipped"]
    assert answered["reply"] == {"template": "confirmation",
                                 "to": "tanto@maru-kensetsu.example.jp"}


def test_the_contractor_side_writes_only_to_configured_addresses(store, store_url, tmp_path,
                                                                 sink):
    """Contractor side: submissions go to the issuer's form address and staff mail to the
    staff, both from the config; a queue mail's own addresses, however hostile, are never
    made recipients (nothing there needs `reply_address`)."""
    _config, store, feed = make_side(store, store_url, tmp_path, sink)
    hostile = (b"From: tanto\x01@maru|kensetsu.example.jp\n"
               b"Reply-To: =?utf-8?q?a?=@evil.example.jp, <b@[192.0.2.1]>\n")
    records = [feed(raw.replace(b"From: tanto@maru.example.jp\n", hostile, 1))
               for raw in (submission_mail("35075-00001M", "〇〇浄水場△△修繕工事"),
                           submission_mail("35075-09999M", "村道工事"))]
    assert [r["status"] for r in records] == ["submitted", "unroutable"]
    rows = select_all(store, outbox)
    assert {r.kind for r in rows} == {"submission", "alert"}
    assert {a.strip() for r in rows for a in r.to_addrs.split(",")} == {
        "keiyaku@city.example.jp", "jimu@maru.example.jp"}

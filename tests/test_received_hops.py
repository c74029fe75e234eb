"""The Received hops of a mail (mail-parser): read as far as they go, never a raise."""

from __future__ import annotations

import pytest

from mailbot.pipeline.facts import mail_facts
from mailbot.pipeline.received import MAX_CLAUSE, MAX_HOPS
from mailbot.samples.hostile import base_mails, hostile_mails

RECEIVED = (
    b"Received: from mx.city.example.jp (mx.city.example.jp [192.0.2.10])\r\n"
    b"\tby mailbot.city.example.jp (Postfix) with LMTP id 4AbC;\r\n"
    b"\tTue, 3 Jun 2025 10:00:05 +0900\r\n"
    b"Received: from mail.maru-kensetsu.example.jp (mail.maru-kensetsu.example.jp\r\n"
    b" [198.51.100.7]) by mx.city.example.jp (Postfix) with ESMTPS id 9XyZ\r\n"
    b" for <keiyaku@city.example.jp>; Tue, 3 Jun 2025 10:00:00 +0900\r\n"
)
MAIL = (b"From: tanaka@maru-kensetsu.example.jp\r\nTo: keiyaku@city.example.jp\r\n"
        b"Subject: test\r\nMessage-ID: <r1@maru-kensetsu.example.jp>\r\n\r\nbody\r\n")


def test_hops_come_earliest_first():
    hops = mail_facts(RECEIVED + MAIL, "keiyaku").received
    assert [h.hop for h in hops] == [1, 2]
    assert hops[0].from_clause.startswith("mail.maru-kensetsu.example.jp")
    assert hops[0].by_clause == "mx.city.example.jp (Postfix)" and hops[0].protocol == "ESMTPS"
    assert hops[0].date_utc == "2025-06-03T01:00:00+00:00"
    assert hops[1].protocol == "LMTP"


def test_a_mail_without_received_has_no_hops():
    assert mail_facts(MAIL, "keiyaku").received == ()


@pytest.mark.parametrize("value", [
    b"(" * 100_000,
    b"(" * 4000,
    b"from x (" * 1300,
    b"from " + b"x " * 50_000 + b"; Mon, 1 Jan 2024 00:00:00 +0000",
    b"from [" * 5000,
    b"from a\x00b by \x1b$B\xff\xfe; Tue, 31 Feb 2025 25:61:61 +9999",
    b"from <" + b"<" * 1000,
    b"from x (" + b"y" * 3000 + b") by z; Mon, 1 Jan 2024 00:00:00 +0000",
    b"=?UTF-8?B?" + b"A" * 500 + b"?=",
    b"",
])
def test_hostile_received_fields_are_hops_without_clauses(value):
    hops = mail_facts(b"Received: " + value + b"\r\n" + MAIL, "keiyaku").received
    assert len(hops) == 1
    assert all(c is None or len(c) <= MAX_CLAUSE for h in hops
               for c in (h.from_clause, h.by_clause, h.protocol, h.date_utc))


def test_only_the_nearest_hops_are_read():
    many = b"".join(b"Received: from h%d by h%d; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                    % (i, i + 1) for i in range(1000))
    assert len(mail_facts(many + MAIL, "keiyaku").received) == MAX_HOPS


def test_hostile_samples_with_received_fields_never_raise():
    bases = {name: RECEIVED + raw for name, raw in base_mails().items()}
    for mail in hostile_mails(400, seed=12, bases=bases):
        facts = mail_facts(mail.data, "keiyaku")
        assert isinstance(facts.received, tuple)

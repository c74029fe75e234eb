"""Hostile review of sender authentication (issue 14): an attacker who can send any mail,
publish any DNS record on the test DNS server and sign with their own DKIM keys tries to make
mailbot believe something false. Each test is one attack against real parts (the DNS
fixture, dkimpy signatures, the contractor pipeline on SQLite and PostgreSQL); it passes
because the attack fails.
"""

from __future__ import annotations

import time

import dkim
import pytest

from mailbot.auth import Authenticator, AuthSettings, Result, trace_header

from .auth_mail import answer_mail
from .dkim_keys import HEADERS, dkim_key, publish, sign
from .dns_server import dns_server
from .test_contractor_auth import Side

pytestmark = pytest.mark.clock

CITY = "city.example.jp"
EVIL = "evil.example.co.jp"  # the attacker's own registrable domain
MX = "mx.maru.example.jp"  # the contractor's MTA (its authserv-id)
OTHER_NUMBER = "35075-00777M"  # another contractor's guarantee, answered by the city
FORGED_AR = (f"Authentication-Results: {MX}; dkim=pass header.d={CITY} header.s=sel;"
             f" dmarc=pass (p=reject) header.from={CITY}\r\n").encode()


@pytest.fixture
def dns():
    with dns_server() as server:
        publish(server, CITY)
        server.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
        publish(server, EVIL)
        server.txt(f"_dmarc.{EVIL}", "v=DMARC1; p=none")
        yield server


def _auth(dns, ids: tuple[str, ...] = ()) -> Authenticator:  # noqa: ANN001
    return Authenticator(AuthSettings(resolvers=(dns.address,), authserv_ids=ids,
                                      timeout_seconds=1.0))


@pytest.fixture
def side(store, store_url, tmp_path, sink):
    return Side(store, store_url, tmp_path, sink)


def _genuine_answer(body: str = f"{OTHER_NUMBER} 確認しました。", length: bool = False) -> bytes:
    """A real answer of the city to another contractor's submission, signed by the city
    (the attacker, that other contractor, holds it)."""
    raw = answer_mail(body=body)
    present = [h for h in HEADERS if h + b":" in raw.lower()]
    signature = dkim.sign(raw, b"sel", CITY.encode(), dkim_key(CITY).private_pem,
                          canonicalize=(b"relaxed", b"relaxed"), include_headers=present,
                          length=length)
    return signature + raw


# --- contractor side: a genuine issuer signature replayed or stretched -------------------


def test_replayed_answer_with_a_prepended_subject_naming_our_number_changes_nothing(dns, side):
    """The city signed Subject once; a second Subject on top is not covered by the
    signature, but is the one a mail reader (and mailbot) shows."""
    raw = b"Subject: Re: 35075-00001M\r\n" + _genuine_answer()
    verdict = _auth(dns).verdict(raw, intake="lmtp")
    decided = side.feed(raw, verdict)
    assert side.state() == "sent", decided.get("answers")


def test_replayed_answer_with_a_prepended_in_reply_to_changes_nothing(dns, side):
    """The genuine answer has no In-Reply-To: the attacker adds one naming our submission."""
    raw = f"In-Reply-To: {side.row.message_id}\r\n".encode() + _genuine_answer()
    verdict = _auth(dns).verdict(raw, intake="lmtp")
    decided = side.feed(raw, verdict)
    assert side.state() == "sent", decided.get("answers")


def test_replayed_result_header_added_by_the_attacker_is_not_believed(dns, side):
    raw = (f"In-Reply-To: {side.row.message_id}\r\nX-Mailbot-Result: verified\r\n".encode()
           + _genuine_answer(body="お世話になっております。"))
    decided = side.feed(raw, _auth(dns).verdict(raw, intake="lmtp"))
    assert side.state() == "sent", decided.get("answers")


def test_text_appended_past_a_dkim_body_length_tag_changes_nothing(dns, side):
    """l= signs only the first bytes of the body: our number appended after them."""
    raw = _genuine_answer(length=True) + "\r\n保証契約番号 35075-00001M\r\n".encode()
    verdict = _auth(dns).verdict(raw, intake="lmtp")
    decided = side.feed(raw, verdict)
    assert side.state() == "sent", decided.get("answers")


def test_a_correctly_signed_answer_with_every_header_signed_still_confirms(dns, side):
    """The fixes above refuse only what the signature does not cover."""
    raw = sign(answer_mail(body="35075-00001M 確認しました。"), CITY)
    verdict = _auth(dns).verdict(raw, intake="lmtp")
    assert verdict.authenticated("dmarc")
    side.feed(raw, verdict)
    assert side.state() == "confirmed"


# --- the trust boundary of Authentication-Results -----------------------------------------


@pytest.mark.parametrize("hop", [
    # Exim records the envelope sender, a quoted local part may hold spaces
    f'Received: from evil.example.co.jp ([198.51.100.9]) by {MX} with esmtps'
    ' (Exim 4.96) (envelope-from <"x with LMTP"@evil.example.co.jp>) id 1r2s3t;'
    ' Tue, 01 Dec 2026 10:00:01 +0900\r\n',
    # Postfix records the recipient, with an address extension chosen by the sender
    f'Received: from evil.example.co.jp (evil.example.co.jp [198.51.100.9]) by {MX}'
    ' (Postfix) with ESMTPS id 4Q0 for <"denshi+a with LMTP"@maru.example.jp>;'
    ' Tue, 01 Dec 2026 10:00:01 +0900\r\n',
    # the HELO name, as the MTA recorded it
    f'Received: from x.with LMTP (evil.example.co.jp [198.51.100.9]) by {MX}'
    ' (Postfix) with ESMTPS id 4Q1; Tue, 01 Dec 2026 10:00:01 +0900\r\n',
])
def test_words_a_sender_puts_into_our_mx_received_line_do_not_move_the_boundary(dns, hop):
    """Only the Received line's own `with` clause makes it a local delivery hop."""
    local = (f"Received: from {MX} by imap.maru.example.jp with LMTP id abc;"
             " Tue, 01 Dec 2026 10:00:02 +0900\r\n").encode()
    raw = local + hop.encode() + FORGED_AR + answer_mail()
    verdict = _auth(dns, (MX,)).verdict(raw, intake="imap")
    assert verdict.source == "self" and not verdict.authenticated("dmarc") and verdict.forged


def test_a_real_lmtp_hop_above_our_mx_still_leaves_its_results_trusted(dns):
    local = (f"Received: from {MX} ([127.0.0.1]) by imap.maru.example.jp with LMTP id abc"
             " (envelope-from <info@city.example.jp>) for <denshi@maru.example.jp>;"
             " Tue, 01 Dec 2026 10:00:02 +0900\r\n").encode()
    ours = (f"Received: from mail.city.example.jp (mail.city.example.jp [192.0.2.25]) by {MX}"
            " (Postfix) with ESMTPS id 4Q0\r\n").encode()
    verdict = _auth(dns, (MX,)).verdict(local + FORGED_AR + ours + answer_mail())
    assert verdict.source == f"authres:{MX}" and verdict.authenticated("dmarc")


def test_results_a_sender_writes_to_our_own_smtp_listener_are_not_believed(dns):
    """Mailbot's SMTP listener writes no Received line: whatever follows its two trace
    lines is the sender's, an A-R with our id and a Received of its own included."""
    own_hop = (f"Received: from mail.city.example.jp by {MX} with ESMTPS id 4Q0;"
               " Tue, 01 Dec 2026 10:00:01 +0900\r\n").encode()
    raw = (b"Return-Path: <x@evil.example.co.jp>\r\n" + trace_header("198.51.100.9", "evil", "SMTP")
           + FORGED_AR + own_hop + answer_mail())
    verdict = _auth(dns, (MX,)).verdict(raw, intake="smtp")
    assert verdict.source == "self" and not verdict.authenticated("dmarc") and verdict.forged


def test_a_trace_header_written_into_an_imap_mail_gives_no_spf(dns):
    dns.txt(CITY, "v=spf1 ip4:198.51.100.0/24 -all")  # the attacker's address, claimed
    raw = (b"Return-Path: <info@city.example.jp>\r\n"
           + trace_header("198.51.100.9", "mail.city.example.jp", "SMTP") + answer_mail())
    for intake in ("imap", "lmtp"):
        verdict = _auth(dns).verdict(raw if intake == "imap" else b"Return-Path: <x@e.jp>\r\n"
                                     + trace_header("203.0.113.1", "e", "LMTP") + raw,
                                     intake=intake)
        assert verdict.spf is None and not verdict.authenticated("dmarc")


# --- From tricks ------------------------------------------------------------------------


@pytest.mark.parametrize("from_line", [
    f'"keiyaku@{CITY}" <x@{EVIL}>',
    f"keiyaku@{CITY} <x@{EVIL}>",
    f"<x@{EVIL}> keiyaku@{CITY}",
    f"=?utf-8?q?keiyaku=40{CITY}?= <x@{EVIL}>",
    f"keiyaku@{CITY}, x@{EVIL}",
])
def test_a_from_of_the_attacker_dressed_as_the_city_changes_nothing(dns, side, from_line):
    raw = answer_mail(from_addr="x@placeholder.example.jp", body="35075-00001M 確認しました。")
    raw = raw.replace(b"From: ", b"X-Old: ", 1)
    raw = sign(f"From: {from_line}\r\n".encode() + f"In-Reply-To: {side.row.message_id}\r\n"
               .encode() + raw, EVIL)
    decided = side.feed(raw, _auth(dns).verdict(raw, intake="lmtp"))
    assert side.state() == "sent", decided.get("answers")


def test_two_from_fields_one_signed_changes_nothing(dns, side):
    raw = sign(answer_mail(from_addr=f"x@{EVIL}", body="35075-00001M 確認しました。"), EVIL)
    raw = f"From: keiyaku@{CITY}\r\nIn-Reply-To: {side.row.message_id}\r\n".encode() + raw
    verdict = _auth(dns).verdict(raw, intake="lmtp")
    assert verdict.from_domain is None and not verdict.authenticated("dmarc")
    side.feed(raw, verdict)
    assert side.state() == "sent"


def test_a_second_from_does_not_dodge_the_reject_policy_of_the_first(dns):
    """From: the city (p=reject) plus a From of the attacker's: DMARC cannot pass, and the
    city's p=reject still calls it forged (no reply on the issuer side)."""
    raw = sign(answer_mail(from_addr=f"x@{EVIL}"), EVIL)
    for extra in (f"From: keiyaku@{CITY}\r\n".encode(), b""):
        mail = extra + raw if extra else raw.replace(
            f"<x@{EVIL}>".encode(), f"<keiyaku@{CITY}>, <x@{EVIL}>".encode(), 1)
        verdict = _auth(dns).verdict(mail, intake="lmtp")
        assert not verdict.authenticated("dmarc") and verdict.forged, verdict.summary()


# --- hostile DNS ------------------------------------------------------------------------


def test_huge_and_garbage_records_never_raise_and_never_pass(dns):
    dns.remove(f"sel._domainkey.{CITY}")
    dns.txt(f"sel._domainkey.{CITY}", "v=DKIM1; k=rsa; p=" + "A" * 60_000)
    dns.remove(f"_dmarc.{CITY}")
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject; " + "x" * 30_000)
    dns.txt(f"_dmarc.{CITY}", "\x00\xff garbage")
    started = time.monotonic()
    verdict = _auth(dns).verdict(sign(answer_mail(), CITY))
    assert time.monotonic() - started < 10
    assert [c.result for c in verdict.dkim] == [Result.PERMERROR]
    assert not verdict.authenticated("dmarc") and not verdict.authenticated("dkim")


@pytest.mark.parametrize("record", ["V=DMARC1; P=REJECT", "v=DMARC1;p=REJECT;pct=0",
                                    "v=DMARC1; p=reject; sp=none",
                                    "v = DMARC1 ; p = reject"])
def test_reject_policy_is_read_whatever_its_spelling(dns, record):
    dns.remove(f"_dmarc.{CITY}")
    dns.txt(f"_dmarc.{CITY}", record)
    verdict = _auth(dns).verdict(sign(answer_mail(), EVIL))  # not the city's signature
    assert verdict.forged  # RFC 7489 §6.4: the tag name "v" is case-insensitive
    assert not verdict.authenticated("dmarc")


def test_our_mx_passing_a_replayed_signature_is_not_enough_when_a_field_is_unsigned(dns):
    """The MTA verified the city's signature (it does verify), but the Subject on top was
    added by the attacker: the signature in the mail says it was not signed."""
    ours = (f"Received: from evil.example.co.jp (evil.example.co.jp [198.51.100.9]) by {MX}"
            " (Postfix) with ESMTPS id 4Q0\r\n").encode()
    replayed = b"Subject: Re: 35075-00001M\r\n" + _genuine_answer()
    for raw, trusted in ((replayed, False), (_genuine_answer(), True)):
        verdict = _auth(dns, (MX,)).verdict(FORGED_AR + ours + raw)
        assert verdict.source == f"authres:{MX}"
        assert verdict.authenticated("dmarc") is trusted, verdict.summary()
        assert verdict.forged is not trusted

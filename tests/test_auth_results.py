"""Authentication-Results from the admin's MTA: believed for a trusted authserv-id above the
trust boundary only; hostile headers never raise."""

from __future__ import annotations

import pytest

from mailbot.auth import Authenticator, AuthSettings, Result

from .auth_mail import answer_mail
from .dkim_keys import publish, sign
from .dns_server import dns_server

CITY = "city.example.jp"
MX = "mx.maru.example.jp"
PASS_AR = (f"Authentication-Results: {MX}; dkim=pass header.d={CITY} header.s=sel;"
           f" spf=pass smtp.mailfrom=info@{CITY}; dmarc=pass (p=reject dis=none)"
           f" header.from={CITY}\r\n").encode()
OUR_HOP = f"Received: from mail.city.example.jp (mail.city.example.jp [192.0.2.25]) by {MX}" \
          " (Postfix) with ESMTPS id 4Q0\r\n".encode()
FOREIGN_HOP = b"Received: from evil.example.co.jp by relay.example.co.jp with ESMTP id 9Z\r\n"


@pytest.fixture
def dns():
    with dns_server() as server:
        yield server


def _auth(dns, ids=(MX,)):
    return Authenticator(AuthSettings(resolvers=(dns.address,), authserv_ids=ids,
                                      timeout_seconds=1.0))


def test_trusted_results_above_our_received_are_believed_without_dns(dns):
    verdict = _auth(dns).verdict(PASS_AR + OUR_HOP + answer_mail())
    assert verdict.source == f"authres:{MX}"
    assert [(c.domain, c.result, c.selector, c.aligned) for c in verdict.dkim] == [
        (CITY, Result.PASS, "sel", True)]
    assert verdict.spf.result == Result.PASS and verdict.spf.aligned
    assert (verdict.dmarc.result, verdict.dmarc.policy, verdict.dmarc.aligned_by) == (
        Result.PASS, "reject", "dkim")
    assert verdict.envelope_from == f"info@{CITY}"
    assert verdict.authenticated("dmarc")
    assert dns.queries == []  # the MTA's word, nothing asked


def test_untrusted_authserv_id_is_ignored_and_the_mail_verified_itself(dns):
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    verdict = _auth(dns, ids=("mx.other.example.jp",)).verdict(PASS_AR + OUR_HOP + answer_mail())
    assert verdict.source == "self" and verdict.dmarc.result == Result.FAIL and verdict.forged


def test_trusted_id_below_a_foreign_received_came_from_outside(dns):
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    raw = OUR_HOP + PASS_AR + FOREIGN_HOP + answer_mail()  # the sender wrote our id
    verdict = _auth(dns).verdict(raw)
    assert verdict.source == "self" and not verdict.authenticated("dmarc") and verdict.forged


def test_a_local_lmtp_hop_above_the_results_is_not_the_boundary(dns):
    dovecot = b"Received: from mx.maru.example.jp by imap.maru.example.jp with LMTP id 7\r\n"
    verdict = _auth(dns).verdict(b"Return-Path: <info@city.example.jp>\r\n" + dovecot
                                 + PASS_AR + OUR_HOP + answer_mail())
    assert verdict.source == f"authres:{MX}" and verdict.authenticated("dmarc")


def test_dmarc_fail_without_policy_is_looked_up_for_forged(dns):
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=quarantine")
    ar = (f"Authentication-Results: {MX}; dkim=fail header.d={CITY};"
          f" dmarc=fail header.from={CITY}\r\n").encode()
    verdict = _auth(dns).verdict(ar + OUR_HOP + answer_mail())
    assert verdict.dmarc.policy == "quarantine" and verdict.forged


def test_results_without_dmarc_are_evaluated_from_the_mta_dkim(dns):
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    ar = f"Authentication-Results: {MX}; dkim=pass header.d={CITY} header.s=sel\r\n".encode()
    verdict = _auth(dns).verdict(ar + OUR_HOP + answer_mail())
    assert verdict.dmarc.result == Result.PASS and verdict.dmarc.aligned_by == "dkim"


def test_dmarc_result_for_another_from_domain_is_not_this_mails(dns):
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    ar = (f"Authentication-Results: {MX}; dmarc=pass header.from=town.example.co.jp\r\n"
          ).encode()
    verdict = _auth(dns).verdict(ar + OUR_HOP + answer_mail())
    assert verdict.dmarc.result == Result.FAIL


@pytest.mark.parametrize("garbage", [
    f"Authentication-Results: {MX}; dkim=\r\n",
    f"Authentication-Results: {MX}; ;;;; (((( dmarc=pass\r\n",
    f"Authentication-Results: {MX}; dkim=pass header.d=" + "a" * 100_000 + "\r\n",
    "Authentication-Results: \r\n",
    f"Authentication-Results: {MX}\x00; dmarc=pass\r\n",
])
def test_garbage_results_never_raise_and_never_pass(dns, garbage):
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    verdict = _auth(dns).verdict(garbage.encode() + OUR_HOP + answer_mail())
    assert not verdict.authenticated("dmarc")


def test_hostile_signatures_and_headers_never_raise(dns):
    publish(dns, CITY)
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    auth = _auth(dns, ids=())
    many = b"".join(b"DKIM-Signature: v=1; a=rsa-sha256; d=city.example.jp; s=s%d; b=AA; bh=AA;"
                    b" h=from\r\n" % i for i in range(200))
    verdict = auth.verdict(many + answer_mail())
    assert len(verdict.dkim) == 5 and not verdict.authenticated("dkim")
    assert len([q for q in dns.queries if "_domainkey" in q[0]]) <= 5
    for raw in (b"DKIM-Signature: \xff\xfe\x00garbage\r\n" + answer_mail(),
                b"DKIM-Signature: v=1; d=" + b"x" * 70_000 + b"; s=sel\r\n" + answer_mail(),
                b"ARC-Seal: i=1; cv=none; d=city.example.jp; s=sel; b=!!\r\n" + answer_mail(),
                b"X-Huge: " + b"\xe3\x81\x82" * 400_000 + b"\r\n" + answer_mail(),
                b"\r\n\r\n\r\n", b"", b"\x00" * 1000, sign(answer_mail(), CITY)[:300]):
        verdict = auth.verdict(raw)
        assert not verdict.authenticated("dmarc")

"""Self-verified authentication: DKIM, DMARC, SPF and DNS failures, against a real DNS server
on loopback (tests/dns_server.py) and mail signed with dkimpy (tests/dkim_keys.py)."""

from __future__ import annotations

import time

import pytest

from mailbot.auth import Authenticator, AuthSettings, Requirement, Result, trace_header

from .auth_mail import answer_mail
from .dkim_keys import dkim_key, publish, sign
from .dns_server import dns_server

CITY = "city.example.jp"


@pytest.fixture
def dns():
    with dns_server() as server:
        yield server


@pytest.fixture
def auth(dns):
    return Authenticator(AuthSettings(resolvers=(dns.address,), timeout_seconds=1.0))


def test_aligned_dkim_pass_is_a_dmarc_pass(dns, auth):
    publish(dns, CITY)
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    verdict = auth.verdict(sign(answer_mail(), CITY))
    assert verdict.source == "self" and verdict.from_domain == CITY
    [check] = verdict.dkim
    assert (check.domain, check.result, check.selector, check.aligned) == (
        CITY, Result.PASS, "sel", True)
    assert (verdict.dmarc.result, verdict.dmarc.policy, verdict.dmarc.aligned_by) == (
        Result.PASS, "reject", "dkim")
    assert verdict.authenticated(Requirement.DMARC) and verdict.authenticated("dkim")
    assert not verdict.forged and not verdict.temporary
    assert verdict.label_ja() == "送信元認証済み"


def test_altered_body_fails_dkim_and_is_forged_under_reject(dns, auth):
    publish(dns, CITY)
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    signed = sign(answer_mail(), CITY).replace("確認しました".encode(), "差し戻します".encode())
    verdict = auth.verdict(signed)
    assert [c.result for c in verdict.dkim] == [Result.FAIL]
    assert verdict.dmarc.result == Result.FAIL and verdict.forged
    assert not verdict.authenticated("dmarc") and not verdict.authenticated("dkim")


def test_signature_by_a_key_not_published_fails(dns, auth):
    publish(dns, CITY, key=dkim_key("someone-else"))  # the selector holds another key
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=quarantine")
    verdict = auth.verdict(sign(answer_mail(), CITY))
    assert [c.result for c in verdict.dkim] == [Result.FAIL]
    assert verdict.forged and verdict.dmarc.policy == "quarantine"


def test_missing_key_is_a_permerror_and_never_a_pass(dns, auth):
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=none")
    verdict = auth.verdict(sign(answer_mail(), CITY))
    assert [c.result for c in verdict.dkim] == [Result.PERMERROR]
    # p=none: DMARC fails, but the domain does not call such mail forged
    assert verdict.dmarc.result == Result.FAIL and not verdict.forged
    assert not verdict.authenticated("dmarc") and not verdict.temporary


def test_signature_of_another_organization_is_not_aligned(dns, auth):
    publish(dns, "mailer.example.co.jp")
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    verdict = auth.verdict(sign(answer_mail(), "mailer.example.co.jp"))
    [check] = verdict.dkim
    assert check.result == Result.PASS and not check.aligned
    assert verdict.signed_domain() == "mailer.example.co.jp"
    assert verdict.forged and not verdict.authenticated("dkim")


def test_subdomain_uses_sp_of_the_organizational_domain(dns, auth):
    # From mail.city.example.jp: no _dmarc record of its own; example.jp's sp= applies.
    dns.txt("_dmarc.example.jp", "v=DMARC1; p=none; sp=reject")
    verdict = auth.verdict(answer_mail("keiyaku@mail.city.example.jp"))
    assert verdict.dkim == ()
    assert (verdict.dmarc.result, verdict.dmarc.policy) == (Result.FAIL, "reject")
    assert verdict.forged
    assert ("_dmarc.mail.city.example.jp.", "TXT") in dns.queries
    assert ("_dmarc.example.jp.", "TXT") in dns.queries


def test_org_domain_fallback_with_relaxed_alignment(dns, auth):
    # Signed by the organizational domain, From a subdomain: relaxed alignment passes.
    publish(dns, "example.jp")
    dns.txt("_dmarc.example.jp", "v=DMARC1; p=reject")
    verdict = auth.verdict(sign(answer_mail(f"keiyaku@{CITY}"), "example.jp"))
    assert verdict.dmarc.result == Result.PASS and verdict.dmarc.policy == "reject"


def test_strict_dkim_alignment_refuses_the_parent_domain(dns, auth):
    publish(dns, "example.jp")
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject; adkim=s")
    verdict = auth.verdict(sign(answer_mail(f"keiyaku@{CITY}"), "example.jp"))
    assert verdict.dmarc.result == Result.FAIL and verdict.forged


def test_no_dmarc_record_is_none_and_unauthenticated_but_not_forged(dns, auth):
    publish(dns, CITY)
    verdict = auth.verdict(answer_mail())  # unsigned, no record anywhere
    assert verdict.dmarc.result == Result.NONE and verdict.dmarc.policy is None
    assert not verdict.forged and not verdict.authenticated("dmarc")
    signed = auth.verdict(sign(answer_mail(), CITY))
    # DMARC needs a record; DKIM alone (require = "dkim") is met by the aligned signature
    assert signed.dmarc.result == Result.NONE
    assert not signed.authenticated("dmarc") and signed.authenticated("dkim")
    assert verdict.authenticated("none")


def test_two_dmarc_records_are_no_record(dns, auth):
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=none")
    assert auth.verdict(answer_mail()).dmarc.result == Result.NONE


@pytest.mark.parametrize("from_header", [
    b"From: a@city.example.jp\r\nFrom: b@city.example.jp\r\n",
    b"From: a@city.example.jp, b@town.example.jp\r\n",
    b"From: =?utf-8?q?garbage\r\n",
    b"",
])
def test_several_or_unreadable_from_is_never_authenticated(dns, auth, from_header):
    publish(dns, CITY)
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    body = answer_mail().split(b"\r\n", 1)[1]  # without its own From
    verdict = auth.verdict(sign(from_header + body, CITY) if from_header else body)
    assert verdict.from_domain is None
    assert not verdict.authenticated("dmarc") and not verdict.authenticated("none")


def _smtp(raw: bytes, ip: str, sender: str = f"info@{CITY}") -> bytes:
    return (f"Return-Path: <{sender}>\r\n".encode() + trace_header(ip, "mx.city.example.jp",
                                                                    "SMTP") + raw)


def test_spf_pass_through_the_listener_trace_is_a_dmarc_pass(dns, auth):
    dns.txt(CITY, "v=spf1 ip4:192.0.2.0/24 -all")
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    verdict = auth.verdict(_smtp(answer_mail(), "192.0.2.25"), intake="smtp")
    assert (verdict.spf.domain, verdict.spf.result, verdict.spf.client_ip) == (
        CITY, Result.PASS, "192.0.2.25")
    assert verdict.dmarc.result == Result.PASS and verdict.dmarc.aligned_by == "spf"
    assert verdict.envelope_from == f"info@{CITY}"


def test_spf_fail_from_a_foreign_address_is_forged_under_reject(dns, auth):
    dns.txt(CITY, "v=spf1 ip4:192.0.2.0/24 -all")
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    verdict = auth.verdict(_smtp(answer_mail(), "198.51.100.7"), intake="smtp")
    assert verdict.spf.result == Result.FAIL and verdict.forged


def test_the_trace_is_believed_only_from_the_listener_and_only_on_top(dns, auth):
    dns.txt(CITY, "v=spf1 ip4:192.0.2.0/24 -all")
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    raw = _smtp(answer_mail(), "192.0.2.25")
    assert auth.verdict(raw, intake="imap").spf is None  # anyone can write it into a mail
    assert auth.verdict(raw, intake="lmtp").spf is None  # the LMTP peer is our own MTA
    # A sender's copy of the header below the listener's own lines is the sender's
    buried = _smtp(raw.split(b"\r\n", 1)[1].replace(b"192.0.2.25", b"198.51.100.7", 1),
                   "198.51.100.7")
    verdict = auth.verdict(buried, intake="smtp")
    assert verdict.spf.client_ip == "198.51.100.7" and verdict.spf.result == Result.FAIL
    moved = b"X-Spam: no\r\n" + raw  # not the first lines: not ours
    assert auth.verdict(moved, intake="smtp").spf is None


def test_silent_dns_is_temperror_never_a_pass(dns):
    publish(dns, CITY)
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    auth = Authenticator(AuthSettings(resolvers=(dns.address,), timeout_seconds=0.3))
    signed = sign(answer_mail(), CITY)
    dns.silent = True
    started = time.monotonic()
    verdict = auth.verdict(signed)
    assert time.monotonic() - started < 10  # bounded by the timeouts, whatever the load
    assert [c.result for c in verdict.dkim] == [Result.TEMPERROR]
    assert verdict.dmarc.result == Result.TEMPERROR
    assert verdict.temporary and not verdict.forged
    assert not verdict.authenticated("dmarc") and not verdict.authenticated("dkim")
    assert verdict.error and "DNS" in verdict.error
    assert verdict.label_ja() == "認証を確認できませんでした（DNS 一時エラー）"
    dns.silent = False
    assert auth.verdict(signed).authenticated("dmarc")  # checked again: now it passes


def test_each_name_is_asked_once_per_verdict(dns, auth):
    publish(dns, CITY)
    dns.txt(f"_dmarc.{CITY}", "v=DMARC1; p=reject")
    signed = sign(sign(answer_mail(), CITY), CITY)  # two signatures, one key
    verdict = auth.verdict(signed)
    assert [c.result for c in verdict.dkim] == [Result.PASS, Result.PASS]
    keys = [q for q in dns.queries if q[0] == f"sel._domainkey.{CITY}."]
    assert len(keys) == 1
    auth.verdict(signed)  # nothing is kept between mails
    assert len([q for q in dns.queries if q[0] == f"sel._domainkey.{CITY}."]) == 2


def test_a_from_of_nested_comments_is_no_from_and_logs_no_traceback(caplog):
    """The stdlib's address parser recurses once per nested comment: a sender's
    ``((((…))))`` must give an unreadable From, not a fault logged with a traceback."""
    from mailbot.auth import Authenticator

    raw = (b"From: " + b"(" * 5000 + b"a@city.example.jp\r\nTo: b@maru.example.jp\r\n"
           b"Subject: x\r\n\r\nbody\r\n")
    with caplog.at_level("ERROR"):
        verdict = Authenticator().verdict(raw)
    assert verdict.from_domain is None and not verdict.authenticated("dmarc")
    assert not [r for r in caplog.records if r.exc_info]

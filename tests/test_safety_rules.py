"""The mail-safety rules one by one, and the two chains built from them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailbot.addresses import domain_of, in_domains, local_part, same_address
from mailbot.pipeline.facts import MailFacts
from mailbot.pipeline.safety import (
    BOUNCE,
    REPLY_CHAIN,
    ROBOT_LOCALPARTS,
    SUBMIT_CHAIN,
    Context,
    first_reason,
    is_bounce,
    rules,
)

PERSON = "tanaka@maru-kensetsu.example.jp"
FACTS = MailFacts(
    mailbox="keiyaku", message_id="<m1@maru-kensetsu.example.jp>", references=None,
    sender=PERSON, sender_domain="maru-kensetsu.example.jp", to_cc=(), subject="提出",
    attachment_names=(), auto_submitted=None, precedence=None, list_id=None,
    return_path=f"<{PERSON}>", author=PERSON)
PLAIN = Context(address=PERSON)


def test_every_rule_passes_a_persons_plain_mail():
    for rule in {*REPLY_CHAIN, *SUBMIT_CHAIN}:
        assert rule.name and rule.description
        assert rule.check(FACTS, PLAIN) is None, rule.name


@pytest.mark.parametrize(("rule", "changes", "context", "reason"), [
    (rules.NoSender(), {"sender": None}, PLAIN, "no sender address"),
    (rules.Answerable(), {"sender": "tanaka@example.test"}, PLAIN,
     "sender address 'tanaka@example.test' cannot be answered by SMTP: "),
    (rules.Unambiguous(), {"sender_ambiguous": "2 addresses in one header"}, PLAIN,
     f"sender address {PERSON!r} is not the one mailbox its header names: 2 addresses"),
    (rules.AutoSubmitted(), {"auto_submitted": "auto-generated"}, PLAIN,
     "Auto-Submitted: auto-generated"),
    (rules.AutoSubmitted(("auto-replied",), "an auto-reply"), {"auto_submitted": "Auto-Replied"},
     PLAIN, "an auto-reply"),
    (rules.ListPrecedence(), {"precedence": "Bulk"}, PLAIN, "Precedence: Bulk"),
    (rules.MailingList(), {"list_id": "<keiyaku.city.example.jp>"}, PLAIN, "mailing list (List-Id)"),
    (rules.NullSender(), {"return_path": "<>"}, PLAIN, "null sender (bounce)"),
    (rules.NullSender(reason=BOUNCE), {"return_path": " "}, PLAIN, BOUNCE),
    (rules.RobotSender(), {}, Context("No-Reply@surety.example.jp"),
     "robot sender No-Reply@surety.example.jp"),
    (rules.RobotSender(), {}, Context('"postmaster"@maru-kensetsu.example.jp'), "robot sender"),
    (rules.OwnAddress(), {}, Context(PERSON, own_addresses=("Tanaka@Maru-Kensetsu.Example.JP",)),
     "our own address"),
    (rules.IssuerDomain(), {}, Context("keiyaku@mail.city.example.jp",
                                 issuer_domains=frozenset({"city.example.jp"})),
     "from an issuer's domain (mail.city.example.jp) but answers no submission"),
])
def test_each_rule_can_object(rule, changes, context, reason):
    found = rule.check(replace(FACTS, **changes), context)
    assert found is not None and found.startswith(reason)


def test_auto_submitted_no_is_a_persons_mail():
    assert rules.AutoSubmitted().check(replace(FACTS, auto_submitted="No"), PLAIN) is None
    limited = rules.AutoSubmitted(("auto-replied",), "x")
    assert limited.check(replace(FACTS, auto_submitted="auto-generated"), PLAIN) is None


@pytest.mark.parametrize("value", ["auto-replied; owner-email=\"a@maru.example.jp\"",
                                   "Auto-Replied (vacation)", " auto-replied ;x=1"])
def test_auto_submitted_is_judged_by_its_keyword_not_its_parameters(value):
    limited = rules.AutoSubmitted(("auto-replied",), "an auto-reply")
    assert limited.check(replace(FACTS, auto_submitted=value), PLAIN) == "an auto-reply"
    assert rules.AutoSubmitted().check(replace(FACTS, auto_submitted="no (a person)"),
                                       PLAIN) is None


def test_reply_chain_reasons_come_in_its_order():
    facts = replace(FACTS, auto_submitted="auto-replied", precedence="list", return_path="<>")
    assert first_reason(REPLY_CHAIN, facts, PLAIN) == "Auto-Submitted: auto-replied"
    assert first_reason(REPLY_CHAIN, replace(facts, auto_submitted=None), PLAIN) == (
        "Precedence: list")
    assert first_reason(REPLY_CHAIN, FACTS, PLAIN) is None


@pytest.mark.parametrize("changes", [
    {"auto_submitted": "auto-generated"}, {"precedence": "bulk"},
    {"list_id": "<news.surety.example.jp>"},
])
def test_submit_chain_takes_the_suretys_automatic_mail(changes):
    """The surety's notices are machine-sent: only the reply chain refuses them."""
    facts = replace(FACTS, **changes)
    assert first_reason(REPLY_CHAIN, facts, PLAIN) is not None
    assert first_reason(SUBMIT_CHAIN, facts, PLAIN) is None


def test_submit_chain_takes_a_no_reply_sender_but_not_a_mailer_daemon():
    noreply = replace(FACTS, author="noreply@surety.example.jp")
    assert first_reason(SUBMIT_CHAIN, noreply, Context(noreply.author)) is None
    daemon = replace(FACTS, author="mailer-daemon@relay.example.jp")
    assert first_reason(SUBMIT_CHAIN, daemon, Context(daemon.author)) == BOUNCE
    assert is_bounce(daemon) and is_bounce(replace(FACTS, return_path="<>"))
    assert not is_bounce(noreply)


def test_submit_chain_order():
    context = Context(PERSON, own_addresses=(PERSON,))
    assert first_reason(SUBMIT_CHAIN, FACTS, context) == "our own submission address"
    assert first_reason(SUBMIT_CHAIN, replace(FACTS, return_path="<>"), context) == BOUNCE
    auto = replace(FACTS, auto_submitted="auto-replied")
    assert first_reason(SUBMIT_CHAIN, auto, PLAIN) == "an auto-reply (RFC 3834)"


def test_robot_list_holds_the_bounce_senders():
    assert {"mailer-daemon", "postmaster", "noreply"} <= set(ROBOT_LOCALPARTS)


@pytest.mark.parametrize(("address", "local", "domain"), [
    ("Tanaka@Maru.Example.JP", "Tanaka", "maru.example.jp"),
    ('"postmaster"@x.example.jp', "postmaster", "x.example.jp"),
    ('"a@b"@c.example.jp', "a@b", "c.example.jp"),
    ("a@b@c.example.jp", "a@b", "c.example.jp"),  # not an address: split at the last "@"
    ("postmaster", "postmaster", None),
    ("", None, None),
    (None, None, None),
    ("((((a@b\ufffd", "((((a", "b\ufffd"),
])
def test_address_parts(address, local, domain):
    assert local_part(address) == local
    assert domain_of(address) == domain


def test_address_comparisons():
    assert same_address("A@B.jp", "a@b.JP")
    assert not same_address(None, None) and not same_address("", "")
    assert in_domains("Mail.City.Example.JP", {"city.example.jp"})
    assert not in_domains("evilcity.example.jp", {"city.example.jp"})
    assert not in_domains(None, {"city.example.jp"})

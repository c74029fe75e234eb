"""The two mail-safety chains, built from one set of rules, and the runner.

`REPLY_CHAIN` (the issuer side): may mailbot answer this mail's sender automatically?
RFC 3834: never an auto-reply, list or bulk mail, a bounce, a robot or our own mail, and
only an address that passes `mailbot.addresses.reply_address`.

`SUBMIT_CHAIN` (the contractor side): may this mail cause a submission to an issuer? Its
input is the surety's automatic notice mail and the staff's forwards, so mail marked
auto-generated or bulk, or sent from a no-reply address, is what it is there for; what
must not cause one is a bounce, our own submission coming back, an auto-reply (an issuer's
out-of-office) and anything else from an issuer's domain. It judges the From address (who
wrote it), not the reply address.

The first rule that objects gives the reason; the order is the order of the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .rule import BOUNCE_LOCALPARTS, Context, SafetyRule
from .rules import (
    Answerable,
    AutoSubmitted,
    IssuerDomain,
    ListPrecedence,
    MailingList,
    NoSender,
    NullSender,
    OwnAddress,
    RobotSender,
    Unambiguous,
)

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts

BOUNCE = "a bounce (null sender or mailer-daemon)"

REPLY_CHAIN: tuple[SafetyRule, ...] = (
    NoSender(),
    Answerable(),
    Unambiguous(),
    AutoSubmitted(),
    ListPrecedence(),
    MailingList(),
    NullSender(),
    RobotSender(),
    OwnAddress(),
)

BOUNCE_CHAIN: tuple[SafetyRule, ...] = (
    NullSender(reason=BOUNCE),
    RobotSender(localparts=BOUNCE_LOCALPARTS, reason=BOUNCE),
)

SUBMIT_CHAIN: tuple[SafetyRule, ...] = (
    *BOUNCE_CHAIN,
    OwnAddress(reason="our own submission address"),
    AutoSubmitted(values=("auto-replied",), reason="an auto-reply (RFC 3834)"),
    IssuerDomain(),
)


def first_reason(chain: Sequence[SafetyRule], facts: MailFacts, context: Context) -> str | None:
    """The reason of the first rule in `chain` that objects to the mail, or None."""
    for rule in chain:
        reason = rule.check(facts, context)
        if reason is not None:
            return reason
    return None


def is_bounce(facts: MailFacts) -> bool:
    """A null sender, or From a mailer-daemon or postmaster (the contractor's view)."""
    return first_reason(BOUNCE_CHAIN, facts, Context(address=facts.author)) is not None

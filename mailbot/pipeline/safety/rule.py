"""What a mail-safety rule sees and says, and the word lists the rules share.

A rule has a `name`, a `description` and `check(facts, context)`, which returns why the mail
must not cause an automatic mail (a reply to its sender, or a submission to an issuer), or
None. The reason goes into the decision record as it is, so its wording is part of the
record. `facts` are the header facts of the mail (`mailbot.pipeline.facts.MailFacts`);
`context` is what the side that asks knows: the address it judges and its own addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts

# Local parts of the addresses delivery systems send bounces from (RFC 5321 §4.5.1 for
# postmaster): a mail from one is no person's mail.
BOUNCE_LOCALPARTS = ("mailer-daemon", "postmaster")
# Local parts of robots: the bounce senders and the mailers that say nobody reads answers.
ROBOT_LOCALPARTS = (*BOUNCE_LOCALPARTS, "no-reply", "noreply", "do-not-reply")
# Precedence values of list and bulk mail (RFC 3834 §2: no automatic answer to them).
LIST_PRECEDENCE = ("bulk", "list", "junk")


@dataclass(frozen=True)
class Context:
    """What one side knows when it asks whether a mail may cause mail."""

    # The address the side judges: the reply address for an answer to the sender (valid,
    # normalised; None when there is none), the From address for a submission.
    address: str | None
    own_addresses: tuple[str, ...] = ()  # mail from these is our own
    issuer_domains: frozenset[str] = frozenset()  # domains issuers answer from


class SafetyRule(Protocol):
    name: str
    description: str

    def check(self, facts: MailFacts, context: Context) -> str | None: ...

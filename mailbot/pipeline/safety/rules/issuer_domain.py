"""issuer_domain: the mail is not from an issuer (whose answers were matched before)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailbot.addresses import domain_of, in_domains

from ..rule import Context

if TYPE_CHECKING:
    from mailbot.pipeline.facts import MailFacts


class IssuerDomain:
    name = "issuer_domain"
    description = "the address is not in (a subdomain of) a domain issuers answer from"

    def check(self, facts: MailFacts, context: Context) -> str | None:
        domain = domain_of(context.address)
        if in_domains(domain, context.issuer_domains):
            return f"from an issuer's domain ({domain}) but answers no submission"
        return None

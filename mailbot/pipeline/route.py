"""Routing: the ordered `[[routes]]` of the config applied to one message's facts.

Every route says whether it matched and why (which of its conditions held), so the decision
record shows the admin exactly which rule sent the mail where. A route with no conditions
matches everything; `stop = true` ends the list after a match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch

from mailbot.config import MailboxConfig, Route

from .facts import MailFacts


@dataclass
class Routing:
    issuer: str | None
    department: str | None = None
    template_set: str | None = None
    notify: list[str] = field(default_factory=list)
    folder: str | None = None
    trail: list[dict[str, object]] = field(default_factory=list)


def _why(route: Route, facts: MailFacts) -> list[str] | None:
    """The conditions that held, or None when one of them did not."""
    reasons = []
    if route.mailbox:
        if facts.mailbox not in route.mailbox:
            return None
        reasons.append(f"mailbox {facts.mailbox}")
    if route.to:
        hit = sorted(set(route.to) & set(facts.to_cc))
        if not hit:
            return None
        reasons.append(f"to/cc {', '.join(hit)}")
    if route.sender_domain:
        if facts.sender_domain not in route.sender_domain:
            return None
        reasons.append(f"sender domain {facts.sender_domain}")
    if route.subject is not None:
        if not route.subject.search(facts.subject):
            return None
        reasons.append(f"subject matches {route.subject.pattern!r}")
    if route.attachment:
        names = [n for n in facts.attachment_names
                 if any(fnmatch(n.lower(), g.lower()) for g in route.attachment)]
        if not names:
            return None
        reasons.append(f"attachment {names[0]}")
    return reasons or ["no conditions"]


def route(facts: MailFacts, mailbox: MailboxConfig, routes: tuple[Route, ...]) -> Routing:
    result = Routing(issuer=mailbox.issuer)
    for rule in routes:
        why = _why(rule, facts)
        result.trail.append({"route": rule.name, "matched": why is not None, "why": why or []})
        if why is None:
            continue
        result.issuer = rule.issuer or result.issuer
        result.department = rule.department or result.department
        result.template_set = rule.template_set or result.template_set
        result.folder = rule.folder or result.folder
        result.notify.extend(a for a in rule.notify if a not in result.notify)
        if rule.stop:
            break
    return result

"""What `mailbot config check` says of a configuration that loads: warnings and refusals.

Loading already refuses what cannot work (a wrong type, an unknown key, a bad address).
Here are the checks of a configuration as a deployment: *refusals* (exit 2) for what
would answer wrongly or do nothing — an empty configuration, two issuers whose replies
would go out under one address, a route that would take one issuer's mail for another —
and *warnings* for what the daemon needs but a command at a terminal does not (a password
that cannot be read now, a mailbox to watch) or what a contractor would miss (a signature
without a contact). `--strict` turns the warnings into refusals.
"""

from __future__ import annotations

import re

from mailbot.verify.policy import IssuerPolicy

from . import Config

# A telephone number (03-0000-0000, 0120-000-000) or a mail address in a signature.
_CONTACT = re.compile(r"\d{2,5}-\d{1,4}-\d{3,4}|[^\s@]+@[^\s@]+\.[^\s@]+")


def _answering(config: Config) -> list[tuple[str, IssuerPolicy]]:
    """The issuers that answer mail: those with a mailbox of the issuer role, and those a
    route sends such a mailbox's mail to (on the contractor side, [issuers.*] are the ones
    submitted to)."""
    keys = {m.issuer for m in config.mailboxes if m.role == "issuer"}
    if keys:
        keys |= {r.issuer for r in config.routes if r.issuer}
    return [(key, policy) for key, policy in config.issuers.items() if key in keys]


def refusals(config: Config) -> list[str]:
    """Why this configuration must not run, each naming the key."""
    found = []
    if not (config.mailboxes or config.issuers or config.contractor):
        found.append("[mailboxes] no mailboxes: mailbot would watch nothing (add a "
                     "[[mailboxes]] table)")
    senders: dict[str, str] = {}
    for key, policy in _answering(config):
        sender = (policy.reply_from or config.smtp.from_addr).lower()
        other = senders.setdefault(sender, key)
        if other != key:
            found.append(f"[issuers.{key}.reply_from] the replies of {policy.name or key} would "
                         f"go out as {sender}, the address of [issuers.{other}]: give each "
                         "issuer its own reply_from")
    found.extend(_foreign_routes(config))
    return found


def _foreign_routes(config: Config) -> list[str]:
    """A route that sets an issuer or notifies someone but names no mailbox matches the
    mail of every mailbox: where mailboxes answer for different issuers, a sender who
    words a subject to match would be answered as, and listed to, another issuer."""
    owners = {m.name: m.issuer for m in config.mailboxes if m.role == "issuer"}
    if len(set(owners.values())) < 2:
        return []
    found = []
    for rule in config.routes:
        if rule.mailbox or not (rule.issuer or rule.notify):
            continue
        what = f"sets issuer {rule.issuer}" if rule.issuer else "notifies " + ", ".join(rule.notify)
        found.append(f"[routes.{rule.name}.mailbox] not set: the route {what} for the mail of "
                     f"every mailbox ({', '.join(sorted(owners))}), which answer for "
                     "different issuers; name the mailboxes it is for")
    return found


def warnings(config: Config) -> list[str]:
    """What to fix before the daemon runs, or what a contractor would miss."""
    found = [problem for secret in config.secrets() if (problem := secret.problem())]
    if not config.mailboxes and (config.issuers or config.contractor):
        found.append("[mailboxes] no mailboxes: enough for verify and store at a terminal, "
                     "but mailbot run would watch nothing")
    found.extend(_unauthenticated(config))
    staffed = sorted(k for k, p in config.issuers.items() if p.staff)
    for key, policy in _answering(config):
        if not policy.staff and staffed:
            # Replier.staff_alert: an issuer without staff alerts everybody's staff.
            found.append(f"[issuers.{key}.staff] not set: alerts about {policy.name or key}'s "
                         "mail (the contractor's address and subject) go to the staff of "
                         + ", ".join(f"[issuers.{k}]" for k in staffed))
        if policy.signature and not _CONTACT.search(policy.signature):
            found.append(f"[issuers.{key}.signature] has no telephone number or mail address: "
                         "replies ask the contractor to contact the desk named there")
        elif not policy.signature:
            found.append(f"[issuers.{key}.signature] not set: replies end with the issuer's "
                         "name only, and no contact for the contractor's questions")
    return found


def _unauthenticated(config: Config) -> list[str]:
    """`auth = "none"`: the From of such mail is believed as written (docs/authentication.md)."""
    found = []
    if config.auth.require == "none":
        found.append('[auth.require] is "none": every From is believed as written, so anyone '
                     "can answer as an issuer or a contractor; set it per counterpart instead")
    for (issuer, side), requirement in sorted(config.auth_overrides.items()):
        if requirement == "none":
            where = f"issuers.{issuer}" + (".submission" if side == "contractor" else "")
            whose = ("mail to this issuer" if side == "issuer" else "this issuer's answers")
            found.append(f'[{where}.auth] is "none": the From of {whose} is believed as '
                         "written (anyone can write it)")
    return found

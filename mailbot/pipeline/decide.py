"""One message in, one decision out: read → route → verify → decision record + reply request.

The decision record is the audit trail (notices with keys masked, problems, the routes and
rules that fired, the outcome); the reply request is what the outbox will send (the
confirmation or the discrepancy template and its facts); the folder is where the message
goes in its mailbox once the decision is safely recorded. No key is ever written in clear.

Which problems ask the contractor to send again is the reader's call, made by what an
attachment is: a PDF, a zip of them, a forwarded mail or typed text can hold a notice, so a
problem with one is a problem of the mail (a discrepancy reply names it). An image, an
office document or any other file cannot; it is not searched, and whatever is wrong with it
only goes into the record's `ignored` list. A mail whose notices all verified and whose
only oddities are such files is confirmed. A reply goes only to an address that passes
`addresses.reply_address`; otherwise the record's `reply_skipped` says why.

Sender authentication (`facts.auth`, docs/authentication.md): a mail that fails DMARC for a
domain publishing `p=quarantine` or `p=reject` is forged — no reply, to review, and its key
checks count towards no throttle (they are not its sender's). The throttle keys on the
proven sender (`sender_key.throttle_key`), never on Reply-To; a failing claim over the
limit is `throttled`: no reply, to review, and the staff are alerted once per sender (or
number) and window (`Decision.alert`). `facts.auth is None` (replays) proves nothing and
changes nothing.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailbot.addresses import Unanswerable, reply_address
from mailbot.config import Config, MailboxConfig
from mailbot.ledger import ReplyRequest
from mailbot.pipeline.records import DecisionRecord, Status
from mailbot.pipeline.safety import REPLY_CHAIN, first_reason
from mailbot.pipeline.safety import Context as SafetyContext
from mailbot.store import Store
from mailbot.verify import Claim, IssuerPolicy, VerifyResult, verify
from parsers import ParseResult, Reader

from .facts import MailFacts
from .issuer_alert import StaffAlert, throttle_alert
from .route import Routing, route
from .sender_key import throttle_key

TOKYO = ZoneInfo("Asia/Tokyo")
# How much of a mail's subject (or sender) a decision, a reply or a staff mail carries: a
# sender's header may be hundreds of KiB, and folding it into a reply costs seconds and
# over 100 MiB (the standard library's header folding), for nothing anyone reads.
MAX_SUBJECT = 200
MAX_ADDRESS = 320
MAX_MESSAGE_ID = 998  # RFC 5322's line limit


def clip(text: str | None, limit: int = MAX_SUBJECT) -> str | None:
    """`text` cut to `limit` characters, marked with "…" when it was cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def mask_key(key: str) -> str:
    """`Z28YUEAJ38ux` → `Z28Y********` (docs/security.md)."""
    return key[:4] + "*" * max(len(key) - 4, 0)


def mask_keys_in(text: str, keys: list[str]) -> str:
    """`text` (a Subject) with each of `keys` masked: contractors do type 「認証キー …」 into
    the Subject, and the decision, the reply and the listings keep it. A key found only in
    the NFKC form of the text (full-width letters) masks that form."""
    for key in keys:
        if key in text:
            text = text.replace(key, mask_key(key))
            continue
        folded = unicodedata.normalize("NFKC", text)
        if key in folded:
            text = folded.replace(key, mask_key(key))
    return text


@dataclass
class Decision:
    status: str  # "verified" | "discrepancy" | "recorded"
    outcomes: list[str]
    record: DecisionRecord
    reply: ReplyRequest | None
    action: str | None  # "move:FOLDER" | "keyword:KW" | None
    subject: str | None = None  # the mail's Subject with the notices' keys masked
    alert: StaffAlert | None = None  # what the issuer's staff must be told now


def reply_blocked(facts: MailFacts, own_addresses: tuple[str, ...] = ()) -> str | None:
    """Why this mail must not get an automatic reply (RFC 3834, or no valid address), or None."""
    try:
        address: str | None = reply_address(facts.sender)
    except Unanswerable:
        address = None  # the chain's `answerable` rule says why
    return first_reason(REPLY_CHAIN, facts, SafetyContext(address, own_addresses))


def mailbox_action(mailbox: MailboxConfig, folder: str) -> str | None:
    if mailbox.kind != "imap" or mailbox.action == "none":
        return None
    if mailbox.action == "keyword":
        return f"keyword:{mailbox.keyword}"
    return f"move:{folder}"


FORGED = "forged: DMARC fails for a domain whose policy is p={policy}"
THROTTLED = "throttled: too many failed key checks from {key}"


def _verify_all(
    parsed: ParseResult,
    facts: MailFacts,
    policy: IssuerPolicy,
    store: Store,
    on: datetime,
    dry_run: bool,
    sender: str | None,
) -> list[VerifyResult]:
    return [
        verify(
            store,
            Claim(
                guarantee_number=n.guarantee_number,
                auth_key=n.auth_key,
                on=on.astimezone(TOKYO).date(),
                kind=n.kind,
                project_name=n.project_name,
                contractor=n.contractor,
                sender=sender,
                at=on,
            ),
            policy,
            record_failures=not dry_run,
        )
        for n in parsed.notices
    ]


def decide(
    raw: bytes,
    facts: MailFacts,
    mailbox: MailboxConfig,
    config: Config,
    store: Store,
    reader: Reader,
    received_at: datetime,
    reply_wanted: bool = True,
    dry_run: bool = False,
) -> Decision:
    parsed = reader.read_bytes(raw, facts.message_id or "message", None)
    facts = replace(facts, subject=mask_keys_in(facts.subject, [n.auth_key for n in parsed.notices]))
    routing = route(facts, mailbox, config.routes)
    policy = config.issuer(routing.issuer) if routing.issuer else IssuerPolicy()
    forged = facts.auth is not None and facts.auth.forged
    sender_key = throttle_key(facts, config.auth_requirement(routing.issuer, "issuer"))
    results = (
        # A forged mail's guesses are not its sender's: they count towards no throttle.
        _verify_all(parsed, facts, policy, store, received_at, dry_run or forged, sender_key)
        if mailbox.role == "issuer"
        else []
    )
    throttled = [r for r in results if r.throttled]
    outcomes = sorted({o for r in results for o in r.outcomes})
    if mailbox.role != "issuer":
        status = Status.RECORDED
    elif parsed.notices and not parsed.problems and outcomes == ["verified"]:
        status = Status.VERIFIED
    else:
        status = Status.DISCREPANCY
    folder = routing.folder or (mailbox.done_folder if status == "verified" else mailbox.review_folder)
    own = tuple(mailbox.addresses)
    blocked = reply_blocked(facts, own) if reply_wanted else "backfill: no reply asked"
    if mailbox.role == "issuer" and (forged or throttled):
        folder = mailbox.review_folder  # a person reads it; the sender hears nothing
        dmarc = facts.auth.dmarc if facts.auth is not None else None
        blocked = (FORGED.format(policy=dmarc.policy if dmarc else None) if forged
                   else THROTTLED.format(key=sender_key))
    reply = None
    if mailbox.role == "issuer" and blocked is None and facts.sender:
        reply = ReplyRequest(
            to_addr=reply_address(facts.sender),
            template="confirmation" if status == "verified" else "discrepancy",
            context=_reply_context(parsed, results, facts, routing, policy),
        )
    record: DecisionRecord = {
        "mailbox": mailbox.name,
        "message_id": clip(facts.message_id, MAX_MESSAGE_ID),
        "sender": clip(facts.sender, MAX_ADDRESS),
        "subject": clip(facts.subject),
        "status": status,
        "outcomes": outcomes,
        "notices": [_masked(n.to_dict()) for n in parsed.notices],
        "problems": [p.to_dict() for p in parsed.problems],
        "ignored": [i.to_dict() for i in parsed.ignored],
        "warnings": parsed.warnings,
        "routing": {"issuer": routing.issuer, "department": routing.department,
                    "template_set": routing.template_set, "notify": routing.notify,
                    "routes": routing.trail},
        "verification": [
            {**r.to_json_obj(),
             "differences": [d.__dict__ for d in r.differences]}
            for r in results
        ],
        "folder": folder,
        "reply": {"template": reply.template, "to": reply.to_addr} if reply else None,
        "reply_skipped": None if reply else blocked,
        "authentication": facts.auth.to_json_obj() if facts.auth is not None else None,
    }
    alert = (throttle_alert(routing.issuer, sender_key, facts, received_at, throttled)
             if any(r.throttle_first for r in throttled) and not (dry_run or forged) else None)
    return Decision(status, outcomes, record, reply, mailbox_action(mailbox, folder),
                    facts.subject, alert)


def _masked(notice: dict[str, Any]) -> dict[str, Any]:
    return {**notice, "auth_key": mask_key(notice["auth_key"])}


def _reply_context(
    parsed: ParseResult,
    results: list[VerifyResult],
    facts: MailFacts,
    routing: Routing,
    policy: IssuerPolicy,
) -> dict[str, Any]:
    """Only what the sender already gave plus our verdicts (docs/security.md)."""
    return {
        "in_reply_to": facts.message_id,
        "references": " ".join(r for r in (facts.references, facts.message_id) if r) or None,
        "subject": clip(facts.subject),
        "issuer": policy.name,
        # The issuer's ID: its reply is rendered with its own sender and signature even
        # when two issuers share a name (two desks of one city).
        "issuer_id": routing.issuer,
        "department": routing.department,
        "template_set": routing.template_set or policy.template_set,
        "notices": [
            {
                "guarantee_number": n.guarantee_number,
                "auth_key_masked": mask_key(n.auth_key),
                "outcomes": r.outcomes,
                "reasons": r.reasons,
            }
            for n, r in zip(parsed.notices, results, strict=True)
        ],
        "problems": [{"code": p.code, "origin": p.origin} for p in parsed.problems],
        "addressee": addressee(parsed, results),
    }


MAX_ADDRESSEE = 60
# Honorifics a sender may have written after the company (the reply adds 「ご担当者様」).
_HONORIFICS = ("ご担当者様", "御担当者様", "ご担当者", "担当者様", "御中", "殿", "様")
# What no company name holds but a link, an address or a header line does.
_NOT_A_NAME = ("@", "://", "www.", "<", ">")


def addressee(parsed: ParseResult, results: list[VerifyResult] | None = None) -> str | None:
    """The company the reply is addressed to: the 受注者 the notices name, when they all
    name the same one (the sender's own document); else None, and the reply says
    「ご担当者様」 only. A sender's display name is never used (docs/security.md), nor a
    name the verification found is not the guarantee's contractor, nor text that is no
    name: control or format characters (bidi overrides, zero-width), links, addresses."""
    if any("contractor_mismatch" in r.outcomes for r in results or ()):
        return None
    names = {_bare_name(n.contractor) for n in parsed.notices if n.contractor}
    if len(names) != 1:
        return None
    name = names.pop()
    if not name or len(name) > MAX_ADDRESSEE or any(
            unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")
            for c in name):
        return None
    if any(bad in name.lower() for bad in _NOT_A_NAME) or ":" in name:
        return None
    return name


def _bare_name(contractor: str) -> str:
    """One space between words, without the honorific a sender put after the company."""
    name = " ".join(contractor.split())
    stripped = True
    while stripped:
        stripped = False
        for honorific in _HONORIFICS:
            if name.endswith(honorific):
                name = name[: -len(honorific)].rstrip()
                stripped = True
    return name

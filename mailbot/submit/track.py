"""Issuers' answers to submissions: which submission an answer is about, and its verdict.

A mail in the contractor's queue answers a submission when its In-Reply-To/References
name the submission's Message-ID, or — for answers that lost the thread — when it comes
from that issuer's domain and names the guarantee number. The verdict comes from the
`X-Mailbot-Result` header an issuer's mailbot writes (per number), else from the answer's
own words outside quoted lines: discrepancy words win over confirmation words (a person
should look), and an answer with neither is recorded as `answered` for staff to read.

Only an answer whose author is authenticated (`mailbot.auth`, under the issuer's
requirement `Config.auth_requirement(issuer, "contractor")`) and in the issuer's answer
domains gives a verdict (`trusted_issuer`); any other answer — a forged 確認しました, a
forged `X-Mailbot-Result`, a reply from outside the issuer — is `unauthenticated`: it
changes no state and the staff are asked to check with the issuer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from mailbot.addresses import domain_of, in_domains
from mailbot.auth import AuthVerdict, Requirement
from mailbot.config import Config
from mailbot.replies.render import RESULT_HEADER
from parsers.normalize import canonical_number, normalize_text

from . import table

_NUMBER = re.compile(r"(?<![0-9A-Za-z-])[0-9]{3,}-[0-9]{3,}[A-Z]?(?![0-9A-Za-z])")
# A Message-ID as mailbot writes them: printable ASCII, no "<", ">" or space inside.
_MSG_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
# The thread's newest ids are enough to find a submission (References lists the oldest
# first); a hostile header of thousands must not turn into a query of thousands.
MAX_REFERENCES = 50
# An answer names a few guarantee numbers; a mail listing thousands must not become a query
# of thousands (SQLite allows 32,766 parameters) nor a staff mail of megabytes.
MAX_NUMBERS = 50
EXCERPT_LINES, EXCERPT_WIDTH = 40, 200
_QUOTED = re.compile(r"^\s*(?:>|＞|\|)")
DISCREPANCY_WORDS = ("相違", "不一致", "一致しません", "誤り", "確認できません", "確認できませんでした",
                     "再送", "再提出", "差し替え", "差替", "不備", "認証できません", "無効")
CONFIRMATION_WORDS = ("確認しました", "確認いたしました", "確認が完了", "確認完了", "受領しました",
                      "受領いたしました", "受け付けました", "受付いたしました", "問題ありません")


@dataclass
class Answer:
    verdict: str  # confirmed | discrepancy | answered
    per_number: dict[str, str] = field(default_factory=dict)  # from the result header
    numbers: list[str] = field(default_factory=list)  # guarantee numbers in the text
    excerpt: list[str] = field(default_factory=list)  # the answer's own lines
    how: str = "text"  # header | text


def read_answer(result_header: str | None, subject: str, texts: list[str]) -> Answer:
    own_lines = [line.rstrip() for text in texts for line in text.splitlines()
                 if not _QUOTED.match(line)]
    numbers: list[str] = []
    for chunk in (subject, *own_lines):
        for found in _NUMBER.findall(normalize_text(chunk)):
            number = canonical_number(found)
            if number and number not in numbers and len(numbers) < MAX_NUMBERS:
                numbers.append(number)
    excerpt = [line if len(line) <= EXCERPT_WIDTH else line[:EXCERPT_WIDTH - 1] + "…"
               for line in own_lines if line.strip()][:EXCERPT_LINES]
    if result_header:
        parts = [p.strip() for p in result_header.split(";") if p.strip()]
        per_number = {}
        for part in parts[1:]:
            name, _, codes = part.partition("=")
            if name != "problem" and canonical_number(name):
                verdict = "confirmed" if codes == "verified" else "discrepancy"
                per_number[canonical_number(name) or name] = verdict
        overall = "confirmed" if parts and parts[0] == "verified" else "discrepancy"
        return Answer(overall, per_number, numbers, excerpt, "header")
    text = normalize_text("\n".join([subject, *own_lines]))
    if any(word in text for word in DISCREPANCY_WORDS):
        verdict = "discrepancy"
    elif any(word in text for word in CONFIRMATION_WORDS):
        verdict = "confirmed"
    else:
        verdict = "answered"
    return Answer(verdict, {}, numbers, excerpt, "text")


def referenced_ids(in_reply_to: str | None, references: str | None) -> list[str]:
    """The Message-IDs a mail answers: In-Reply-To's, then the newest of References, at most
    MAX_REFERENCES; anything that is no plausible Message-ID (controls, 8-bit) is left out."""
    found = _MSG_ID.findall(in_reply_to or "") + _MSG_ID.findall(references or "")[::-1]
    return list(dict.fromkeys(found))[:MAX_REFERENCES]



@dataclass
class Match:
    row: Any  # the submissions row
    verdict: str  # confirmed | discrepancy | answered | note | unauthenticated
    how: str  # thread | earlier-thread | number
    claimed: str | None = None  # what an unauthenticated answer said (not believed)


def trusted_issuer(config: Config, issuer: str | None, author: str | None,
                   auth: AuthVerdict | None) -> bool:
    """May a mail from `author` (with verdict `auth`) speak for `issuer` on its
    submissions? Its From domain must be one of the issuer's answer domains and, unless the
    issuer's requirement is `none`, proven by `auth` (None — nothing was checked — proves
    nothing)."""
    rule = config.submissions.get(issuer or "")
    author_domain = domain_of(author)
    if rule is None or not author_domain or not in_domains(author_domain, rule.answer_domains()):
        return False
    require = config.auth_requirement(issuer, "contractor")
    if require == Requirement.NONE:
        return True
    return (auth is not None and (auth.from_domain or "").lower() == author_domain
            and auth.authenticated(require))


def match_submissions(conn: Connection, config: Config, author: str | None,
                      message_ids: list[str], answer: Answer, *, auth: AuthVerdict | None,
                      auto_submitted: bool, result_header: bool) -> list[Match]:
    """Every submission this mail is about, with what it says about each.

    In a submission's thread: a mail from the authenticated issuer gives its verdict; any
    other is `unauthenticated` (a person checks with the issuer). A mail naming the number
    but out of the thread is considered only from the issuer's domains, for the newest
    submission of that number. An auto-reply without mailbot's result header from the
    authenticated issuer (an out-of-office) is only a `note`; so is an answer in the thread
    of an earlier submission of a notice that was submitted again (the current submission
    keeps its state). Bounces are not answers (`mailbot.submit.bounce`)."""
    author_domain = domain_of(author)
    matches: list[Match] = []
    if message_ids:
        for row in table.in_threads(conn, message_ids):
            how = "thread" if row.message_id in message_ids else "earlier-thread"
            matches.append(_match(row, config, author, auth, answer, auto_submitted,
                                  result_header, how))
    if matches or not answer.numbers or not author_domain:
        return matches
    newest: dict[str, Any] = {}
    for row in table.answerable_by_number(conn, answer.numbers):
        rule = config.submissions.get(row.issuer or "")
        if rule is not None and in_domains(author_domain, rule.answer_domains()):
            newest[row.guarantee_number] = row  # an amended guarantee: its latest submission
    return [_match(row, config, author, auth, answer, auto_submitted, result_header, "number")
            for row in newest.values()]


def _match(row: Any, config: Config, author: str | None, auth: AuthVerdict | None,
           answer: Answer, auto_submitted: bool, result_header: bool, how: str) -> Match:
    said = answer.per_number.get(row.guarantee_number, answer.verdict)
    trusted = trusted_issuer(config, row.issuer, author, auth)
    if how == "earlier-thread" or (auto_submitted and not (result_header and trusted)):
        return Match(row, "note", how)
    if not trusted:  # neither its words nor its result header are believed
        return Match(row, "unauthenticated", how, claimed=said)
    return Match(row, said, how)


__all__ = ["RESULT_HEADER", "Answer", "Match", "in_domains", "match_submissions",
           "read_answer", "referenced_ids", "trusted_issuer"]

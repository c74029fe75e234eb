"""Issuers' answers to submissions: which submission an answer is about, and its verdict.

A mail in the contractor's queue answers a submission when its In-Reply-To/References
name the submission's Message-ID, or — for answers that lost the thread — when it comes
from that issuer's domain and names the guarantee number. The verdict comes from the
`X-Mailbot-Result` header an issuer's mailbot writes (per number), else from the answer's
own words outside quoted lines: discrepancy words win over confirmation words (a person
should look), and an answer with neither is recorded as `answered` for staff to read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from mailbot.config import Config
from mailbot.replies.render import RESULT_HEADER
from mailbot.store.schema import submissions
from parsers.normalize import canonical_number, normalize_text

OPEN_STATES = ("sent", "answered", "confirmed", "discrepancy")
_NUMBER = re.compile(r"(?<![0-9A-Za-z-])[0-9]{3,}-[0-9]{3,}[A-Z]?(?![0-9A-Za-z])")
_MSG_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
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
            if number and number not in numbers:
                numbers.append(number)
    excerpt = [line for line in own_lines if line.strip()][:40]
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
    return list(dict.fromkeys(_MSG_ID.findall(f"{in_reply_to or ''} {references or ''}")))


def match_submissions(conn: Connection, config: Config, sender_domain: str | None,
                      message_ids: list[str], answer: Answer) -> list[tuple[Any, str, str]]:
    """(submission row, verdict, how it matched) for every submission this mail answers."""
    rows = list(conn.execute(select(submissions).where(or_(
        submissions.c.message_id.in_(message_ids),
        *(submissions.c.earlier_ids.contains(i, autoescape=True) for i in message_ids),
    )))) if message_ids else []
    how = "thread"
    if not rows and answer.numbers and sender_domain:
        how = "number"
        candidates = conn.execute(
            select(submissions).where(submissions.c.guarantee_number.in_(answer.numbers),
                                      submissions.c.state.in_(OPEN_STATES)))
        rows = [row for row in candidates
                if row.issuer in config.submissions
                and sender_domain.lower() in config.submissions[row.issuer].answer_domains()]
    return [(row, answer.per_number.get(row.guarantee_number, answer.verdict), how)
            for row in rows]


__all__ = ["RESULT_HEADER", "Answer", "match_submissions", "read_answer", "referenced_ids"]

"""The demo's report: one table per side, and each reply, submission, answer and staff alert
written as an .eml file."""

from __future__ import annotations

import unicodedata
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Row

from mailbot.config import Config
from mailbot.ledger import Entry
from mailbot.samples.base import Sample

from .relay import Relayed
from .setting import CASES, CONTRACTOR_ADDR, INBOX, NOTIFICATIONS, STAFF


def _parsed(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)


def _header(raw: bytes, name: str) -> str:
    return str(_parsed(raw).get(name, "")).strip()


def _report_issuer(entries: list[Entry], samples: dict[str, Sample], sent: list[Relayed],
                   replies_dir: Path) -> int:
    by_parent_id = {_header(m.raw, "In-Reply-To"): m.raw for m in sent}
    rows = {e.message_id.strip() if e.message_id else "": e for e in entries}
    print(f"\nissuer side ({INBOX}):")
    print(f"{'mail':<26}{'shows':<26}{'decision':<13}{'outcomes / problems':<34}reply")
    missing = 0
    for index, (name, what, _how) in enumerate(CASES, 1):
        message_id = _header(samples[name].data, "Message-ID")
        row = rows.get(message_id)
        record = (row.record if row is not None else None) or {}
        codes = record.get("outcomes", []) + [p["code"] for p in record.get("problems", [])]
        raw = by_parent_id.get(message_id)
        reply_name = "-"
        if raw is not None:
            reply_name = f"replies/{index:02d}_{name}.eml"
            (replies_dir.parent / reply_name).write_bytes(raw)
        else:
            missing += 1
        print(f"{name:<26}{what:<26}{record.get('status', 'undecided'):<13}"
              f"{', '.join(codes) or '-':<34}{reply_name}")
    print(f"{len(CASES) - missing}/{len(CASES)} replies written to {replies_dir}/")
    return missing


def _pad(text: str, width: int) -> str:
    """`text` padded to `width` terminal columns (full-width characters count two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - used, 1)


def _answer_codes(raw: bytes | None, number: str) -> str:
    """What the issuer's mailbot said about `number` (its X-Mailbot-Result header)."""
    if raw is None:
        return "-"
    for part in _header(raw, "X-Mailbot-Result").split(";"):
        name, _, codes = part.strip().partition("=")
        if name == number:
            return codes.replace("+", ", ")
    return "?"


def _alert_name(raw: bytes) -> str:
    """A staff alert's file name: the notice whose number it names."""
    body = _parsed(raw).get_body(("plain",))
    text = body.get_content() if body is not None else ""
    for index, case in enumerate(NOTIFICATIONS, 1):
        if case.fields.guarantee_number in text:
            return f"{index:02d}_{case.name}.eml"
    return f"00_{_header(raw, 'Message-ID').strip('<>').split('@')[0]}.eml"


def _report_contractor(submissions: list[Row[Any]], config: Config, sent: list[Relayed],
                       dirs: dict[str, Path]) -> int:
    rows = {r.guarantee_number: r for r in submissions}
    by_id = {_header(m.raw, "Message-ID"): m.raw for m in sent}
    by_parent_id = {_header(m.raw, "In-Reply-To"): m.raw for m in sent}
    print(f"\ncontractor side ({CONTRACTOR_ADDR}):")
    print(f"{'notice':<20}{'shows':<26}{'submission':<13}{'issuer answered':<17}{'issuer':<9}"
          "subject of the submission mail")
    missing = 0
    for index, case in enumerate(NOTIFICATIONS, 1):
        row = rows.get(case.fields.guarantee_number)
        state = row.state if row is not None else "none"
        if state != case.expected:
            missing += 1
        issuer = "-"
        if row is not None and row.issuer:
            issuer = config.issuers[row.issuer].name or row.issuer
        message_id = (row.message_id or "").strip() if row is not None else ""
        submitted = by_id.get(message_id) if message_id else None
        answer = by_parent_id.get(message_id) if message_id else None
        stem = dirs["submissions"] / f"{index:02d}_{case.name}"
        if submitted is not None:
            stem.with_suffix(".eml").write_bytes(submitted)
        if answer is not None:
            stem.with_suffix(".answer.eml").write_bytes(answer)
        subject = row.subject if row is not None and submitted is not None else None
        print(f"{case.name:<20}{case.shows:<26}{state:<13}"
              f"{_answer_codes(answer, case.fields.guarantee_number):<17}"
              f"{_pad(issuer, 9)}{subject or '-'}")
    alerts = sorted((_alert_name(m.raw), m.raw) for m in sent if STAFF in m.rcpt_tos)
    for name, raw in alerts:
        (dirs["staff"] / name).write_bytes(raw)
        print(f"  staff alert staff/{name}: {_header(raw, 'Subject')}")
    print(f"{len(NOTIFICATIONS) - missing}/{len(NOTIFICATIONS)} notices reached the expected "
          f"state; submissions and the issuer's answers written to {dirs['submissions']}/, "
          f"{len(alerts)} staff alerts to {dirs['staff']}/")
    return missing


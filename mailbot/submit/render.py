"""A submission mail in one issuer's form: address, subject rule, body lines, attachments.

`submission_context()` gathers the values the issuer's rule asks for and refuses (with a
Japanese reason for the contractor's staff) when one is unknown, rather than sending a
mail the issuer would bounce back. `render_submission()` writes the RFC 5322 bytes: the
subject from the rule's jinja2 line, the body from the issuer's template set
(`submission.txt.j2` unless the rule names another), the notice PDF and the extra files
attached. The mail is the contractor's own, so it carries no Auto-Submitted header: the
issuer is meant to answer it.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import UndefinedError

from mailbot.config import ContractorConfig, SubmissionRule
from mailbot.config.contractor import SUBJECT_ENV
from mailbot.replies.render import (
    MAIL_POLICY,
    is_message_id,
    jis_safe,
    template_environment,
    tidy,
)
from mailbot.replies.safe import (
    safe_context,
    set_address,
    set_recipients,
    set_text,
    set_token,
)
from parsers.headers import clean_body_text, clean_header_text
from parsers.model import Notice

from .files import File

SUBJECT_LABELS = {"project_no": "工事番号", "project_name": "工事名", "kind": "保証の種類",
                  "guarantee_number": "保証契約番号", "contractor": "受注者",
                  "issuer": "発注者", "department": "担当部署", "surety": "保証事業会社"}


class SubmissionError(ValueError):
    """The issuer's form cannot be filled in; the message is for the contractor's staff."""


def submission_context(notice: Notice, rule: SubmissionRule, contractor: ContractorConfig,
                       issuer_name: str, department: str | None,
                       project_no: str | None) -> dict[str, Any]:
    values = {
        "受注者": notice.contractor or contractor.name,
        "担当者氏名・連絡先": " ".join(v for v in (contractor.person, contractor.contact) if v)
        or None,
        "担当者氏名": contractor.person,
        "連絡先": contractor.contact,
        "工事名": notice.project_name,
        "工事番号": project_no,
        "保証名称": notice.kind,
        "保証契約番号": notice.guarantee_number,
        "保証事業会社": notice.surety,
        "発注者": issuer_name,
    }
    missing = [name for name in rule.fields if not values.get(name)]
    if missing:
        raise SubmissionError(f"{issuer_name}の様式で本文に必要な「{missing[0]}」が分かりません")
    return {
        "issuer": issuer_name,
        "department": department,
        "contractor": values["受注者"],
        "person": contractor.person,
        "contact": contractor.contact,
        "project_name": notice.project_name,
        "project_no": project_no,
        "kind": notice.kind,
        "guarantee_number": notice.guarantee_number,
        "surety": notice.surety,
        "lines": [{"label": name, "value": values[name]} for name in rule.fields],
    }


def render_subject(rule: SubmissionRule, context: dict[str, Any]) -> str:
    known = {k: v for k, v in context.items() if isinstance(v, str) and v}
    try:
        text = SUBJECT_ENV.from_string(rule.subject_for(context.get("kind"))).render(known)
    except UndefinedError as exc:
        name = str(exc.message or "").split("'")[1] if "'" in str(exc.message) else "?"
        raise SubmissionError(f"{context['issuer']}の件名の規則に必要な「"
                              f"{SUBJECT_LABELS.get(name, name)}」が分かりません") from None
    except Exception as exc:  # noqa: BLE001 — a template error, or a rule that cannot be used
        raise SubmissionError(f"{context['issuer']}の件名の規則を使えません"
                              f"（{type(exc).__name__}: {exc}）") from None
    return " ".join(text.split())


def render_submission(
    context: dict[str, Any],
    rule: SubmissionRule,
    contractor: ContractorConfig,
    to_addr: str,
    files: list[File],
    message_id: str,
    now: datetime,
    template_dirs: tuple[Path, ...],
    template_set: str = "default",
) -> tuple[bytes, str]:
    """(the mail's bytes, its subject). Any value from the notice is made safe first; a mail
    that still cannot be written (a template that raises, say) is a SubmissionError, so the
    notice goes to the staff with the reason instead of failing its decision again and again."""
    if not is_message_id(message_id or ""):
        raise ValueError(f"not a Message-ID: {message_id!r}")
    try:
        return _render(safe_context(context), rule, contractor, to_addr, files, message_id,
                       now, template_dirs, template_set)
    except SubmissionError:
        raise
    except Exception as exc:  # noqa: BLE001 — deterministic: the same notice fails again
        raise SubmissionError(f"{context.get('issuer') or '発注者'}あての提出メールを作成できません"
                              f"（{type(exc).__name__}: {str(exc)[:300]}）") from exc


def _render(context: dict[str, Any], rule: SubmissionRule, contractor: ContractorConfig,
            to_addr: str, files: list[File], message_id: str, now: datetime,
            template_dirs: tuple[Path, ...], template_set: str) -> tuple[bytes, str]:
    subject = clean_header_text(render_subject(rule, context))
    names = [clean_header_text(f.name) or "notice.pdf" for f in files]
    full = {**context, "attachments": names,
            "signature": contractor.signature, "from_name": contractor.from_name,
            "from_addr": contractor.from_addr, "now": now}
    env = template_environment(template_dirs, template_set)
    body = tidy(clean_body_text(env.get_template(f"{rule.body_template}.txt.j2").render(full)))
    msg = EmailMessage(policy=MAIL_POLICY)
    name = contractor.from_name or contractor.name
    if rule.charset == "iso-2022-jp":
        subject = jis_safe(subject)  # as sent, for listings too
        # Issuers that need ISO-2022-JP bodies need it in the headers too (RFC 2047 "B").
        set_address(msg, "From", jis_safe(name), contractor.from_addr, "iso-2022-jp")
        set_recipients(msg, "To", [to_addr])
        set_text(msg, "Subject", subject, "iso-2022-jp")
    else:
        set_address(msg, "From", name, contractor.from_addr)
        set_recipients(msg, "To", [to_addr])
        set_text(msg, "Subject", subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    set_token(msg, "X-Mailbot-Submission", str(context["guarantee_number"]))
    if rule.charset == "iso-2022-jp":
        msg.set_content(jis_safe(body), charset="iso-2022-jp", cte="7bit")
    else:
        msg.set_content(body, charset="utf-8", cte="base64")
    for file, filename in zip(files, names, strict=True):
        maintype, _, subtype = file.content_type.partition("/")
        msg.add_attachment(file.data, maintype=maintype, subtype=subtype or "octet-stream",
                           filename=filename)
    return msg.as_bytes(), subject

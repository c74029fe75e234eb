"""One notice → one planned submission (the rendered mail) or the reason it cannot go.

Pure apart from reading the store (the issuer lookup) and the extra files: nothing is
written here. The plan carries the notice's hash (HMAC of number and key, so the same
notice is recognised again without storing its key) and a Message-ID chosen now, before
anything is sent, that stays the submission's for good (docs/reliability.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailbot.addresses import domain_of
from mailbot.config import Config
from mailbot.replies.render import new_message_id, template_dirs
from mailbot.store import Store
from mailbot.submit import issuer_window
from parsers.model import Notice

from .files import File, notice_pdf, read_file
from .render import SubmissionError, render_submission, submission_context
from .route import choose_issuer


@dataclass
class Plan:
    guarantee_number: str
    notice_hash: str
    kind: str | None
    project_name: str | None
    message_id: str
    state: str  # queued | unroutable
    issuer: str | None = None
    issuer_name: str | None = None
    found_by: str | None = None
    to_addr: str | None = None
    subject: str | None = None
    reason: str | None = None  # Japanese, for the contractor's staff
    raw: bytes | None = None
    window: str | None = None  # the outbox window name, None for the default
    trail: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """For the decision record (no key, no mail bytes)."""
        return {"guarantee_number": self.guarantee_number, "state": self.state,
                "issuer": self.issuer, "found_by": self.found_by, "to": self.to_addr,
                "subject": self.subject, "reason": self.reason, "trail": self.trail,
                "files": self.files, "message_id": self.message_id}


def notice_hash(store: Store, notice: Notice) -> str:
    return store.hash_key(f"{notice.guarantee_number}\x00{notice.auth_key}")


def plan_notice(notice: Notice, attachments: dict[str, File], texts: list[str], config: Config,
                store: Store, now: datetime) -> Plan:
    """`attachments`: the mail's files by origin (`files.attachments_by_origin`); `texts`: its
    subject and body texts, where an issuer's name may be found."""
    contractor = config.contractor
    if contractor is None:
        raise ValueError("a contractor mailbox needs the [contractor] table")
    domain = domain_of(contractor.from_addr) or "localhost"
    plan = Plan(notice.guarantee_number, notice_hash(store, notice), notice.kind,
                notice.project_name, new_message_id(domain), "unroutable")
    choice = choose_issuer(notice, texts, config, store)
    plan.trail, plan.found_by = choice.trail, choice.found_by
    if choice.issuer is None:
        plan.reason = choice.problem
        return plan
    plan.issuer = choice.issuer
    policy = config.issuers[choice.issuer]
    plan.issuer_name = policy.name or choice.issuer
    rule = config.submissions.get(choice.issuer)
    if rule is None:
        plan.reason = (f"発注者「{plan.issuer_name}」の提出様式が設定されていません"
                       f"（[issuers.{choice.issuer}.submission]）")
        return plan
    to_addr = rule.address_for(notice.kind)
    if to_addr is None:
        plan.reason = (f"発注者「{plan.issuer_name}」に、保証の種類「{notice.kind or '不明'}」の"
                       "提出先アドレスが設定されていません")
        return plan
    plan.to_addr = to_addr
    pdf = notice_pdf(attachments, notice.origin)
    if pdf is None:
        plan.reason = ("お知らせPDFが添付されていません（本文に書かれた番号とキーだけでは"
                       "提出できません。PDFを添付して転送してください）")
        return plan
    files: list[File] = [pdf]
    for path in (*rule.attachments, *choice.attachments):
        try:
            files.append(read_file(path))
        except OSError as exc:
            plan.reason = f"添付する書類 {path} を読めません（{exc.strerror}）"
            return plan
    plan.files = [f.name for f in files]
    try:
        context = submission_context(notice, rule, contractor, plan.issuer_name,
                                     policy.department_for(notice.kind), choice.project_no)
        plan.raw, plan.subject = render_submission(
            context, rule, contractor, to_addr, files, plan.message_id, now,
            template_dirs(config.template_dir), policy.template_set)
    except SubmissionError as exc:
        plan.reason = str(exc)
        return plan
    plan.state = "queued"
    plan.window = issuer_window(choice.issuer) if rule.window is not None else None
    return plan

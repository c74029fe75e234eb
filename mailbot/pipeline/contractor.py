"""A mail in the contractor's notification queue → submissions, or an answer recorded.

First, does it look like a bounce? It fails a submission only when it proves so (sent to
the submission's tokened bounce address and naming its Message-ID, `mailbot.submit.bounce`);
any other changes nothing and the staff hear of it. Is it an issuer's answer to one of our
submissions (its thread, or the issuer's domain plus the guarantee number)? Then the
verdict is recorded only when the author is the authenticated issuer
(`mailbot.submit.track.trusted_issuer`); an unauthenticated answer leaves the state as it is
and asks the staff to check with the issuer by phone; a discrepancy or an answer mailbot
cannot read goes to the contractor's staff. Otherwise, unless it is mail
that must never cause a submission (our own, an issuer's, a bounce, an auto-reply), every
notice in it is planned (`mailbot.submit.plan`). All writes — submission rows, their
outbox rows, staff mail — happen in `Writes.apply`, inside the transaction that records
the decision: a notice seen before (same number and key) is not submitted again, and a
crash leaves either all of it or none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy.engine import Connection

from mailbot.addresses import domain_of, in_domains
from mailbot.config import Config, MailboxConfig
from mailbot.outbox import Outbox
from mailbot.pipeline.records import DecisionRecord, Status
from mailbot.pipeline.safety import SUBMIT_CHAIN, first_reason, is_bounce
from mailbot.pipeline.safety import Context as SafetyContext
from mailbot.store import Store
from mailbot.submit import table
from mailbot.submit.bounce import (
    KEY_PURPOSE,
    BounceReport,
    is_delivery_status,
    proven_ids,
    read_report,
)
from mailbot.submit.files import attachments_by_origin
from mailbot.submit.plan import Plan, plan_notice
from mailbot.submit.staff import STATE_JA, staff_mail
from mailbot.submit.track import (
    RESULT_HEADER,
    Answer,
    Match,
    match_submissions,
    read_answer,
    referenced_ids,
)
from parsers import Reader
from parsers.headers import decode_header_text, raw_header
from parsers.mime import BodyText, walk_message

from .decide import MAX_ADDRESS, MAX_MESSAGE_ID, clip
from .facts import MailFacts

# A notice seen before is submitted again only when the earlier attempt needs another one:
# it could not be routed, failed, was cancelled, or the issuer did not confirm it. The
# surety's mail and a colleague's forward of a notice still in flight stay one submission.
RESUBMITTABLE = ("unroutable", "failed", "cancelled", "discrepancy", "answered")
# A mail without a readable notice that speaks of these is worth a word to the staff (the
# surety's 「発行完了のお知らせ」 often comes without the PDF, which must be downloaded).
GUARANTEE_WORDS = ("電子保証", "認証キー", "保証契約番号")
VERDICT_JA = {"confirmed": "確認完了", "discrepancy": "相違あり", "answered": "返信あり（内容未判定）",
              "bounced": "配送エラー（提出メールが届いていません）"}
UNAUTHENTICATED_ADVICE = [
    "このメールが本当に発注者から送られたものか、送信元の認証で確認できませんでした。",
    "提出の状態は変えていません（確認済みにはしていません）。",
    "発注者に電話で、提出書類が届いているか・確認結果をお問い合わせください"
    "（メールに書かれた番号ではなく、既にご存じの電話番号へ）。"]
BOUNCE_ADVICE = [
    "このメールは、提出メールごとの返送先アドレス（署名付き）宛ての配送エラーではないか、"
    "送った提出メールを特定できないため、提出の状態は変えていません。",
    "提出メールが届いているか、必要に応じて発注者に電話でご確認ください。"]


@dataclass
class Bounce:
    """A mail that looks like a bounce: the submissions it proves failed (token verified,
    Message-ID named), and the kinds of our own mail it names."""

    report: BounceReport
    failed: list[Any]  # submissions rows
    named_own: dict[str, str]  # Message-ID → outbox kind, of our mail the report names
    named_submissions: list[Any]  # submissions it names without proving anything


@dataclass
class Writes:
    """What the decision writes besides the ledger row; `apply` runs in its transaction."""

    config: Config
    outbox: Outbox
    ledger_id: int
    facts: MailFacts
    plans: list[Plan] = field(default_factory=list)
    answers: list[Match] = field(default_factory=list)
    answer: Answer | None = None
    bounce: Bounce | None = None
    problems: list[dict[str, str]] = field(default_factory=list)  # {code, origin}, for staff
    no_pdf_notice: bool = False  # about a guarantee, but nothing to submit: staff must act
    quiet: bool = False  # backfill: record, but write no mail

    def apply(self, conn: Connection, record: DecisionRecord, now: datetime) -> None:
        if self.bounce is not None:
            self._record_bounce(conn, record, now)
            return
        if self.answers:
            self._record_answers(conn, record, now)
            return
        alerts: list[str] = []
        for plan in self.plans:
            outcome = self._submit(conn, plan, now)
            record.setdefault("submissions", []).append({**plan.summary(), "result": outcome})
            if outcome == "unroutable":
                alerts += [f"保証契約番号 {plan.guarantee_number}: {plan.reason}",
                           *(f"  {line}" for line in plan.trail)]
        results = [s["result"] for s in record.get("submissions", [])]
        if "submitted" in results:
            record["status"] = Status.SUBMITTED
        elif "unroutable" in results:
            record["status"] = Status.UNROUTABLE
        elif results:
            record["status"] = Status.DUPLICATE
        if alerts or self.problems or self.no_pdf_notice:
            if alerts:
                what = "提出先を決められないお知らせがあります"
            elif self.problems:
                what = "お知らせを読み取れないメールがあります"
            else:
                what = "お知らせPDFのない電子保証のメールがあります"
                alerts = ["「認証キーのお知らせ」のPDFが添付されていません。保証会社のサービスから"
                          "PDFをダウンロードし、このお知らせを受け付けたメールボックスへ添付して転送してください。"]
            details = [f"メール: {clip(self.facts.subject) or '(件名なし)'}"
                       f"（{clip(self.facts.sender, MAX_ADDRESS)}）",
                       *alerts]
            self._staff(conn, "contractor_alert",
                        {"what": what, "details": details, "problems": self.problems}, now)

    def _submit(self, conn: Connection, plan: Plan, now: datetime) -> str:
        existing = table.by_notice(conn, plan.notice_hash)
        if existing is not None and existing.state not in RESUBMITTABLE:
            return f"duplicate of submission {existing.id}"
        values = {
            "ledger_id": self.ledger_id, "guarantee_number": plan.guarantee_number,
            "kind": plan.kind, "project_name": plan.project_name, "issuer": plan.issuer,
            "found_by": plan.found_by, "to_addr": plan.to_addr, "subject": plan.subject,
            "message_id": plan.message_id, "state": plan.state, "reason": plan.reason,
            "created_at": now,
        }
        if existing is None:
            table.add(conn, plan.notice_hash, values)
        else:  # staff forwarded it again: after fixing the config, or to answer a discrepancy
            if not table.resubmit(conn, existing, values):
                # another pipeline re-submitted it meanwhile: retry, then duplicate
                raise RuntimeError(f"submission {existing.id} changed while being re-submitted")
            # The earlier mail must never go out now (a retry of a failed row, say).
            self.outbox.cancel_superseded(conn, existing.message_id)
            plan.trail.append(f"再提出（前回: {STATE_JA.get(existing.state, existing.state)}、"
                              f"{existing.message_id}）")
        if plan.state != "queued":
            return "unroutable"
        assert plan.raw is not None and plan.to_addr is not None
        self.outbox.insert(conn, "submission", [plan.to_addr], plan.raw, plan.message_id,
                           plan.subject or "", now, ledger_id=self.ledger_id, window=plan.window)
        return "submitted"

    def _mail_line(self) -> str:
        return (f"メール: {clip(self.facts.subject) or '(件名なし)'}"
                f"（{clip(self.facts.author, MAX_ADDRESS)}）")

    def _record_answers(self, conn: Connection, record: DecisionRecord, now: datetime) -> None:
        assert self.answer is not None
        need_staff, untrusted = [], []
        require = None
        for match in self.answers:
            row, verdict, how = match.row, match.verdict, match.how
            entry: dict[str, Any] = {"submission": row.id, "guarantee_number": row.guarantee_number,
                                     "verdict": verdict, "matched_by": how, "was": row.state}
            record.setdefault("answers", []).append(
                entry if match.claimed is None else {**entry, "claimed": match.claimed})
            label = f"保証契約番号 {row.guarantee_number}（{row.to_addr}）"
            out_of_office = ((self.facts.auto_submitted or "no").lower() != "no"
                             and self.answer.how != "header")
            if how == "earlier-thread" and not out_of_office:
                need_staff.append(f"{label}: 再提出する前の提出メールへの返信です（今回の提出の"
                                  "状態は変えていません）")
            if verdict == "note":
                continue  # an out-of-office, or about an earlier submission: no verdict
            about = {"how": how, "subject": clip(self.facts.subject), "from": self.facts.author}
            if verdict == "unauthenticated":
                require = require or self.config.auth_requirement(row.issuer, "contractor")
                table.note_unauthenticated(conn, row.id, {
                    **about, "claimed": match.claimed, "ledger_id": self.ledger_id,
                    "at": now.isoformat(), "authentication": self._auth_summary()})
                untrusted.append(f"{label}: 発注者からの返信と確認できません"
                                 f"（{STATE_JA.get(row.state, row.state)}のまま）")
                continue
            values: dict[str, Any] = {"answered_at": now, "answer_ledger_id": self.ledger_id,
                                      "answer": json.dumps({"verdict": verdict, **about},
                                                           ensure_ascii=False)}
            values["state"] = verdict
            table.record_answer(conn, row.id, values)
            if verdict != "confirmed":
                need_staff.append(f"{label}: {VERDICT_JA[verdict]}")
        notes_only = all(a["verdict"] == "note" for a in record.get("answers", []))
        record["status"] = Status.IGNORED if notes_only else Status.ANSWER
        if notes_only:
            record["reason"] = "an auto-reply or a reply to an earlier submission: no verdict"
        if untrusted:
            label_ja = (self.facts.auth.label_ja(require or "dmarc") if self.facts.auth
                        else "送信元認証の結果なし")
            self._staff(conn, "contractor_alert", {
                "what": "発注者からの返信か確認できないメールがあります（要確認）",
                "details": [self._mail_line(), f"送信元認証: {label_ja}", *untrusted,
                            *need_staff],
                "advice": [*UNAUTHENTICATED_ADVICE, *self._dkim_only_advice(require)],
                "excerpt": self.answer.excerpt,
                "excerpt_title": "発注者を名乗るメールの本文（抜粋・未確認）",
            }, now)
        elif need_staff:
            self._staff(conn, "contractor_alert", {
                "what": "発注者から確認結果の連絡があります（要対応）",
                "details": [self._mail_line(), *need_staff],
                "excerpt": self.answer.excerpt,
            }, now)

    def _dkim_only_advice(self, require: str | None) -> list[str]:
        """An issuer that signs its mail (an aligned DKIM pass) but publishes no DMARC
        record fails `dmarc` every time: say which key the admin may set."""
        auth = self.facts.auth
        if (auth is None or require != "dmarc" or not auth.authenticated("dkim")
                or (auth.dmarc is not None and auth.dmarc.result != "none")):
            return []
        author = domain_of(self.facts.author)
        issuers = sorted({m.row.issuer for m in self.answers
                          if m.verdict == "unauthenticated" and m.row.issuer
                          and author == auth.from_domain
                          and (rule := self.config.submissions.get(m.row.issuer)) is not None
                          and in_domains(author, rule.answer_domains())})
        if not issuers:
            return []  # not the issuer's own domain: no setting would make it authentic
        keys = "、".join(f'[issuers.{i}.submission] auth = "dkim"' for i in issuers)
        return [f"このメールには送信元ドメイン（{auth.from_domain}）の正しい DKIM 署名がありますが、"
                "そのドメインは DMARC を公開していないため、認証済みとして扱っていません。",
                "この発注者が DMARC を公開しない場合は、システム管理者が設定で "
                f"{keys} とすると、"
                "DKIM 署名付きの返信を認証済みとして扱います（docs/authentication.md）。"]

    def _auth_summary(self) -> str:
        return self.facts.auth.summary() if self.facts.auth else "unchecked"

    def _record_bounce(self, conn: Connection, record: DecisionRecord, now: datetime) -> None:
        """A proven bounce fails its submissions; any other changes nothing and tells the
        staff (unless it is a bounce of our own staff mail: that would be a loop)."""
        assert self.bounce is not None
        bounce = self.bounce
        record["bounce"] = {"recipients": list(bounce.report.recipients[:5]),
                            "named_ids": list(bounce.report.named_ids[:5]),
                            "delivery_status": bounce.report.delivery_status,
                            "proven": [row.message_id for row in bounce.failed]}
        lines = []
        for row in bounce.failed:
            record.setdefault("answers", []).append(
                {"submission": row.id, "guarantee_number": row.guarantee_number,
                 "verdict": "bounced", "matched_by": "bounce-token", "was": row.state})
            table.record_answer(conn, row.id, {
                "answered_at": now, "answer_ledger_id": self.ledger_id,
                "state": "failed", "reason": "配送エラーのメールが返ってきました",
                "answer": json.dumps({"verdict": "bounced", "how": "bounce-token",
                                      "subject": clip(self.facts.subject),
                                      "from": self.facts.author}, ensure_ascii=False)})
            lines.append(f"保証契約番号 {row.guarantee_number}（{row.to_addr}）: "
                         f"{VERDICT_JA['bounced']}")
        if lines:
            record["status"] = Status.ANSWER
            self._staff(conn, "contractor_alert", {
                "what": "提出メールが配送エラーで戻ってきました（要対応）",
                "details": [self._mail_line(), *lines]}, now)
            return
        record["status"] = Status.IGNORED
        if any(kind != "submission" for kind in bounce.named_own.values()):
            record["reason"] = "a bounce of our own staff mail: no alert (it would loop)"
            return
        record["reason"] = ("a bounce that proves nothing (not to a tokened bounce address "
                            "naming the Message-ID sent): no submission changed")
        named = [f"保証契約番号 {row.guarantee_number}（{row.to_addr}、"
                 f"{STATE_JA.get(row.state, row.state)}）の提出メールが書かれています"
                 for row in bounce.named_submissions]
        self._staff(conn, "contractor_alert", {
            "what": "配送エラーらしきメールが届きました（提出の状態は変えていません）",
            "details": [self._mail_line(), *named], "advice": BOUNCE_ADVICE}, now)

    def _staff(self, conn: Connection, template: str, context: dict[str, Any],
               now: datetime) -> None:
        contractor = self.config.contractor
        assert contractor is not None
        if self.quiet:
            return
        raw, message_id, subject = staff_mail(self.config, template, context, now)
        self.outbox.insert(conn, "alert", list(contractor.staff), raw, message_id, subject, now,
                           immediate=True, ledger_id=self.ledger_id)


def own_domains(config: Config) -> set[str]:
    """The contractor's own domains (its sender's and its staff's)."""
    contractor = config.contractor
    assert contractor is not None
    return {d for d in map(domain_of, (contractor.from_addr, *contractor.staff)) if d}


def never_submit(facts: MailFacts, config: Config) -> str | None:
    """Why this mail must not cause a submission (a loop, or not the contractor's)."""
    contractor = config.contractor
    assert contractor is not None
    domains = frozenset(d for rule in config.submissions.values() for d in rule.answer_domains())
    context = SafetyContext(facts.author, own_addresses=(contractor.from_addr,),
                            issuer_domains=domains)
    return first_reason(SUBMIT_CHAIN, facts, context)


def judge_bounce(raw: bytes, facts: MailFacts, config: Config, store: Store, outbox: Outbox
                 ) -> Bounce:
    """What a mail that looks like a bounce proves (`mailbot.submit.bounce`); the Message-IDs
    it names or is threaded to tell the staff which submission it may be about."""
    contractor = config.contractor
    assert contractor is not None
    report = read_report(raw)
    proven = proven_ids(report, contractor.bounce_address, store.derived_key(KEY_PURPOSE))
    with store.engine.connect() as conn:
        failed = [row for mid in proven for row in [table.by_message_id(conn, mid)] if row]
        refs = referenced_ids(facts.in_reply_to, facts.references)
        own = outbox.kinds_of(conn, list(dict.fromkeys([*report.named_ids, *refs])))
        named = [row for mid, kind in own.items() if kind == "submission"
                 for row in [table.by_message_id(conn, mid)] if row is not None]
    return Bounce(report, failed, own, named[:10])


def decide_contractor(raw: bytes, facts: MailFacts, mailbox: MailboxConfig, config: Config,
                      store: Store, reader: Reader, outbox: Outbox, ledger_id: int,
                      now: datetime, backfill: bool = False) -> tuple[DecisionRecord, Writes]:
    """The decision record (finished by `Writes.apply`) and the writes it needs.

    `backfill`: old mail met at a first sync (`--since`): answers are recorded, but nothing
    is submitted and no staff mail is written (those notices were most likely handled by
    hand; forwarding one again submits it)."""
    writes = Writes(config, outbox, ledger_id, facts, quiet=backfill)
    contents = walk_message(raw, reader.limits)
    texts = [item.text for item in contents.items if isinstance(item, BodyText)]
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    found = raw_header(headers, RESULT_HEADER)
    header = None if found is None else decode_header_text(found)
    record: DecisionRecord = {"mailbox": mailbox.name, "role": "contractor",
                              "message_id": clip(facts.message_id, MAX_MESSAGE_ID),
                              "sender": facts.sender,
                              "subject": clip(facts.subject), "status": Status.RECORDED, "outcomes": [],
                              "problems": [], "notices": [],
                              "authentication": facts.auth.to_json_obj() if facts.auth else None}
    if is_bounce(facts) or is_delivery_status(headers):
        writes.bounce = judge_bounce(raw, facts, config, store, outbox)
        return record, writes
    answer = read_answer(header or None, facts.subject, texts)
    refs = referenced_ids(facts.in_reply_to, facts.references)
    matches: list[Match] = []
    if not in_domains(domain_of(facts.author), own_domains(config)):  # never our own staff
        with store.engine.connect() as conn:
            matches = match_submissions(
                conn, config, facts.author, refs, answer, auth=facts.auth,
                auto_submitted=(facts.auto_submitted or "no").lower() != "no",
                result_header=header is not None)
    if matches:
        writes.answers, writes.answer = matches, answer
        record["answer"] = {"verdict": answer.verdict, "how": answer.how,
                            "authenticated": any(m.verdict not in ("note", "unauthenticated")
                                                 for m in matches)}
        return record, writes
    blocked = never_submit(facts, config)
    if blocked:
        record["status"], record["reason"] = Status.IGNORED, blocked
        return record, writes
    parsed = reader.read_bytes(raw, facts.message_id or "message", None)
    record["notices"] = [{"guarantee_number": n.guarantee_number, "kind": n.kind,
                          "project_name": n.project_name, "origin": n.origin}
                         for n in parsed.notices]
    if backfill:
        record["status"] = Status.BACKFILL
        record["reason"] = "old mail at the first sync: not submitted"
        return record, writes
    record["problems"] = [p.to_dict() for p in parsed.problems]
    record["ignored"] = [i.to_dict() for i in parsed.ignored]  # photos, office files …
    writes.problems = [{"code": p.code, "origin": p.origin} for p in parsed.problems
                       if p.code != "no_notice_found"]
    if not parsed.notices:
        record["status"] = Status.NO_NOTICE
        text = "\n".join([facts.subject, *texts])
        # Not for a colleague's reply in a submission's thread: that is no new notice.
        writes.no_pdf_notice = not refs and any(word in text for word in GUARANTEE_WORDS)
    attachments = attachments_by_origin(contents, reader.limits) if parsed.notices else {}
    writes.plans = [plan_notice(n, attachments, [facts.subject, *texts], config, store, now)
                    for n in parsed.notices]
    return record, writes

"""要対応 in the console (issue 16): what needs a person, in the account's scope, and each
action through the owner the CLI uses, audited with the account's name; an item of another
issuer is never listed and acting on it is 404; a viewer may not act; a stale action changes
nothing. Items are made by the product's own paths: the pipeline decides (review folder,
reply requests, submissions), the outbox sends to a real SMTP sink that refuses (failed
rows), the ledger fails a claimed row until it is quarantined. On SQLite and PostgreSQL,
against a real uvicorn on loopback."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select

from mailbot.ledger import MAX_ATTEMPTS, requests
from mailbot.outgoing import Outgoing
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import web_audit
from mailbot.submit import table
from mailbot.web.audit import Audit

from .conftest import TEST_SECRET
from .test_submission_forms import mail
from .test_web_guarantees import decide_mail as decide
from .web_console import console

# A Wednesday 10:00 JST, inside the default send window; every part is given this clock.
START = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
SUBMISSION_FORM = """
[issuers.batsu.submission]
to = "denshi@batsu.example.jp"
subject = "【電子保証】{{ project_name }}"
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int = 1) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def web(tmp_path, store_url, sink):
    clock = Clock(START)
    with console(tmp_path, clock=clock, store_url=store_url, smtp_port=sink.settings.port,
                 extra=SUBMISSION_FORM) as running:
        running.sink = sink
        yield running


def quarantine(web, mailbox: str, number: str) -> int:
    """A mail the pipeline failed on MAX_ATTEMPTS times (the ledger's own path)."""
    row = web.ledger.receive(mailbox, mail(number, "〇〇橋補修工事"), now=web.clock()).id
    for _ in range(MAX_ATTEMPTS):
        entry = web.ledger.claim(now=web.clock())
        assert entry is not None and entry.id == row
        web.ledger.fail(row, "Traceback …\nValueError: the reader broke", attempt=entry.attempts)
    assert web.ledger.get(row).state == "quarantined"
    return row


def send(web, refuse: int = 0) -> Outgoing:
    """Render the stored replies and flush the outbox, the relay refusing the first
    `refuse` mails for good."""
    outgoing = Outgoing(web.config, web.store)
    if refuse:
        web.sink.refuse("550 5.1.1 No such user", refuse)
    outgoing.queue(web.clock())
    outgoing.flush(web.clock())
    return outgoing


def reply_of(web, ledger_id: int):
    with web.store.engine.connect() as conn:
        return next(r for r in requests.requests(conn) if r.ledger_id == ledger_id)


def outbox_of(web, ledger_id: int):
    return next(r for r in Outgoing(web.config, web.store).outbox.rows()
                if r.ledger_id == ledger_id)


def submission_of(web, ledger_id: int):
    with web.store.engine.connect() as conn:
        return next(r for r in table.listing(conn) if r.ledger_id == ledger_id)


def audit(web) -> list[tuple[str, str, str | None, int | None, str | None]]:
    with web.store.engine.connect() as conn:
        return [(r.account, r.action, r.target, r.ledger_id, r.detail) for r in conn.execute(
            select(web_audit).where(web_audit.c.action.not_in(("login",)))
            .order_by(web_audit.c.id))]


def items(html: str) -> set[str]:
    return set(re.findall(r'<li class="item" id="item-([a-z]+-\d+)"', html))


def act(client, kind: str, row_id: int, action: str, note: str = ""):
    return client.post("/attention/act", {"kind": kind, "id": str(row_id), "action": action,
                                          "note": note}, token_page="/attention")


def flash_after(client, answer) -> str:
    assert answer.status_code == 303, answer.text[:1000]
    assert answer.headers["location"] == "/attention"
    found = re.search(r'<p class="flash" role="status">([^<]*)</p>', client.get("/attention").text)
    assert found, "no flash"
    return found.group(1)


def test_each_kind_is_listed_for_its_own_scope_only(web):
    review_maru = decide(web, "maru", mail("35075-00001M", "〇〇浄水場修繕工事"))
    review_batsu = decide(web, "batsu", mail("35075-00002M", "△△川護岸工事"))
    held_maru = quarantine(web, "maru", "35075-00003M")
    held_batsu = quarantine(web, "batsu", "35075-00004M")
    unroutable = decide(web, "queue", mail("35075-00005M", "××線道路改良工事"))
    maru_request = reply_of(web, review_maru).id
    batsu_request = reply_of(web, review_batsu).id

    clerk = web.login("maru-clerk")
    page = clerk.get("/attention")
    assert page.status_code == 200 and "<h1>要対応</h1>" in page.text
    assert items(page.text) == {f"review-{review_maru}", f"quarantine-{held_maru}",
                                f"request-{maru_request}"}
    assert f'<a class="mail-link" href="/mails/{review_maru}">' in page.text
    assert "Z28YUEAJ38ux" not in page.text
    assert items(web.login("batsu-clerk").get("/attention").text) == {
        f"review-{review_batsu}", f"quarantine-{held_batsu}", f"request-{batsu_request}"}
    submission = submission_of(web, unroutable)
    assert submission.state == "unroutable"
    contractor = web.login("contractor").get("/attention").text
    assert items(contractor) == {f"submission-{submission.id}"}
    assert "提出先不明" in contractor and "もう一度転送してください" in contractor
    everything = items(web.login("admin").get("/attention").text)
    assert {f"review-{review_maru}", f"review-{review_batsu}", f"quarantine-{held_batsu}",
            f"submission-{submission.id}"} <= everything

    # The viewer sees the list without a single form to act with.
    viewer = web.login("maru-viewer").get("/attention").text
    assert f"item-review-{review_maru}" in viewer
    assert 'action="/attention/act"' not in viewer


def test_retry_of_a_quarantined_mail_puts_it_back_in_line_once(web):
    held = quarantine(web, "maru", "35075-00003M")
    clerk = web.login("maru-clerk")
    page = clerk.get("/attention").text
    assert re.search(rf'id="item-quarantine-{held}".*?value="retry"', page, re.S)
    message = flash_after(clerk, act(clerk, "quarantine", held, "retry"))
    assert "再試行" in message
    entry = web.ledger.get(held)
    assert (entry.state, entry.attempts) == ("received", 0)  # what `quarantine retry` does
    assert audit(web) == [("maru-clerk", "retry", f"ledger:{held}", held, None)]
    assert f"item-quarantine-{held}" not in clerk.get("/attention").text
    # The same form again (a double submit): said so, nothing changed, nothing audited.
    again = flash_after(clerk, act(clerk, "quarantine", held, "retry"))
    assert "できません" in again and "何も変更していません" in again
    assert web.ledger.get(held).state == "received"
    assert len(audit(web)) == 1


def test_another_issuers_row_is_404_and_a_viewer_403_and_nothing_changes(web):
    held = quarantine(web, "batsu", "35075-00004M")
    review = decide(web, "batsu", mail("35075-00002M", "△△川護岸工事"))
    clerk = web.login("maru-clerk")
    for kind, row, action in (("quarantine", held, "retry"), ("review", review, "handled"),
                              ("request", reply_of(web, review).id, "cancel")):
        assert act(clerk, kind, row, action).status_code == 404
    assert act(clerk, "outbox", 999999, "retry").status_code == 404
    viewer = web.login("maru-viewer")
    assert act(viewer, "quarantine", held, "retry").status_code == 403
    # No CSRF token: refused before anything is read.
    refused = clerk.post("/attention/act", {"kind": "quarantine", "id": str(held),
                                            "action": "retry"}, csrf=False)
    assert refused.status_code == 403
    assert web.ledger.get(held).state == "quarantined"
    assert reply_of(web, review).state == "stored"
    assert audit(web) == []
    # The issuer's own clerk may.
    batsu = web.login("batsu-clerk")
    assert "再試行" in flash_after(batsu, act(batsu, "quarantine", held, "retry"))
    assert audit(web) == [("batsu-clerk", "retry", f"ledger:{held}", held, None)]


def test_failed_reply_is_retried_or_cancelled_as_the_cli_does(web):
    first = decide(web, "maru", mail("35075-00001M", "〇〇浄水場修繕工事"))
    second = decide(web, "maru", mail("35075-00006M", "〇〇公園整備工事"))
    send(web, refuse=2)
    failed = [outbox_of(web, first), outbox_of(web, second)]
    assert [r.state for r in failed] == ["failed", "failed"]
    clerk = web.login("maru-clerk")
    page = clerk.get("/attention").text
    assert {f"outbox-{failed[0].id}", f"outbox-{failed[1].id}"} <= items(page)
    assert "550" in page

    web.clock.advance()
    assert "送信の列に戻しました" in flash_after(clerk, act(clerk, "outbox", failed[0].id, "retry"))
    retried = outbox_of(web, first)
    assert (retried.state, retried.attempts, retried.next_attempt_at) == ("queued", 0, web.clock())
    assert reply_of(web, first).state == "queued"  # the request follows its mail
    assert "取り消しました" in flash_after(clerk, act(clerk, "outbox", failed[1].id, "cancel"))
    assert outbox_of(web, second).state == "cancelled"
    assert reply_of(web, second).state == "cancelled"
    # A cancelled row cannot be retried; a queued one can still be cancelled (not sent yet).
    assert "できません" in flash_after(clerk, act(clerk, "outbox", failed[1].id, "retry"))
    assert outbox_of(web, second).state == "cancelled"
    assert [a[:3] for a in audit(web)] == [("maru-clerk", "retry", f"outbox:{failed[0].id}"),
                                           ("maru-clerk", "cancel", f"outbox:{failed[1].id}")]
    send(web)  # the retried reply goes out; sent, it is no longer an item nor cancellable
    assert outbox_of(web, first).state == "sent"
    assert f"outbox-{failed[0].id}" not in items(clerk.get("/attention").text)
    assert "できません" in flash_after(clerk, act(clerk, "outbox", failed[0].id, "cancel"))
    assert outbox_of(web, first).state == "sent" and len(audit(web)) == 2


def test_stored_reply_is_cancelled_and_an_unrenderable_one_rendered_again(web):
    stored = decide(web, "maru", mail("35075-00001M", "〇〇浄水場修繕工事"))
    broken = decide(web, "maru", mail("35075-00006M", "〇〇公園整備工事"))
    request, other = reply_of(web, stored), reply_of(web, broken)
    with web.store.engine.begin() as conn:  # what the replier writes when rendering fails
        requests.unrenderable(conn, other.id, "UndefinedError: 'project_no' is undefined",
                              web.clock())
    clerk = web.login("maru-clerk")
    page = clerk.get("/attention").text
    assert {f"request-{request.id}", f"request-{other.id}"} <= items(page)
    assert "作成失敗" in page and "project_no" in page
    assert "取り消しました" in flash_after(clerk, act(clerk, "request", request.id, "cancel"))
    assert reply_of(web, stored).state == "cancelled"
    assert "作り直します" in flash_after(clerk, act(clerk, "request", other.id, "retry"))
    again = reply_of(web, broken)
    assert (again.state, again.error) == ("stored", None)  # `outbox retry --request`
    assert "できません" in flash_after(clerk, act(clerk, "request", other.id, "retry"))
    assert [a[1:4] for a in audit(web)] == [("cancel", f"request:{request.id}", stored),
                                            ("retry", f"request:{other.id}", broken)]
    send(web)  # rendered and sent now
    assert reply_of(web, broken).state == "sent"
    assert reply_of(web, stored).state == "cancelled"


def register(web, number: str, issuer: str) -> None:
    web.store.apply([GuaranteeEvent(number, "new", "Z28YUEAJ38ux", kind="前払金保証",
                                    issuer=issuer, contractor="〇〇建設株式会社",
                                    project_name="△△川護岸工事", source="t")])


def test_failed_submission_is_resent_and_others_are_marked_handled(web):
    register(web, "35075-00007M", "△△町")
    register(web, "35075-00008M", "△△町")
    failing = decide(web, "queue", mail("35075-00007M", "△△川護岸工事"))
    disputed = decide(web, "queue", mail("35075-00008M", "△△川護岸工事"))
    unroutable = decide(web, "queue", mail("35075-00009M", "××線道路改良工事"))
    outgoing = Outgoing(web.config, web.store)
    web.sink.refuse("550 5.1.1 No such user", 1)
    outgoing.flush(web.clock())
    failed, sent = submission_of(web, failing), submission_of(web, disputed)
    assert (failed.state, sent.state) == ("failed", "sent")
    with web.store.engine.begin() as conn:  # the issuer's answer, as the pipeline records it
        table.record_answer(conn, sent.id, {
            "state": "discrepancy", "answered_at": web.clock(), "answer": json.dumps(
                {"verdict": "discrepancy", "how": "thread", "subject": "Re: 相違あり"})})
    lost = submission_of(web, unroutable)

    contractor = web.login("contractor")
    page = contractor.get("/attention").text
    assert {f"submission-{failed.id}", f"submission-{sent.id}",
            f"submission-{lost.id}"} <= items(page)
    assert re.search(rf'id="item-submission-{failed.id}".*?value="resend"', page, re.S)
    assert "Re: 相違あり" in page
    assert not re.search(rf'id="item-submission-{lost.id}"((?!</li>).)*value="resend"', page,
                         re.S)
    web.clock.advance()
    assert "再送" in flash_after(contractor, act(contractor, "submission", failed.id, "resend"))
    mail_row = outgoing.outbox.by_message_id(failed.message_id)
    assert mail_row is not None and mail_row.state == "queued"  # `outbox retry` of its mail
    assert submission_of(web, failing).state == "queued"  # the submission follows
    assert audit(web) == [("contractor", "resend", f"submission:{failed.id}", failing,
                           f"outbox:{mail_row.id}")]
    again = flash_after(contractor, act(contractor, "submission", failed.id, "resend"))
    assert "できません" in again and len(audit(web)) == 1
    # Unroutable: no owner resends it (the notice must be forwarded again): refused.
    assert "できません" in flash_after(contractor, act(contractor, "submission", lost.id, "resend"))
    assert submission_of(web, unroutable).state == "unroutable"
    assert "対応済み" in flash_after(contractor, act(contractor, "submission", sent.id,
                                                   "handled", "発注者へ電話で確認済み"))
    assert f"submission-{sent.id}" not in items(contractor.get("/attention").text)
    # The issuer side's clerk never sees, nor acts on, the contractor side.
    clerk = web.login("maru-clerk")
    assert not any(i.startswith("submission") for i in items(clerk.get("/attention").text))
    assert act(clerk, "submission", lost.id, "handled").status_code == 404


def test_handled_leaves_the_list_until_the_row_fails_again(web):
    review = decide(web, "maru", mail("35075-00001M", "〇〇浄水場修繕工事"))
    send(web, refuse=1)
    row = outbox_of(web, review)
    assert row.state == "failed"
    clerk = web.login("maru-clerk")
    web.clock.advance()
    for kind, row_id in (("review", review), ("outbox", row.id)):
        message = flash_after(clerk, act(clerk, kind, row_id, "handled", "電話で連絡しました"))
        assert "対応済みにしました" in message
    listed = items(clerk.get("/attention").text)
    assert f"review-{review}" not in listed and f"outbox-{row.id}" not in listed
    shown = clerk.get("/attention?handled=1").text
    assert {f"review-{review}", f"outbox-{row.id}"} <= items(shown)
    assert "対応済み" in shown
    assert audit(web) == [("maru-clerk", "handled", f"ledger:{review}", review, "電話で連絡しました"),
                          ("maru-clerk", "handled", f"outbox:{row.id}", review, "電話で連絡しました")]
    # Marked twice (a double submit): said so, not audited again.
    assert "既に対応済み" in flash_after(clerk, act(clerk, "review", review, "handled"))
    assert len(audit(web)) == 2
    # Retried outside the console (the CLI's owner) and failing again later: listed again.
    web.clock.advance()
    outgoing = Outgoing(web.config, web.store)
    assert outgoing.outbox.retry(row.id, web.clock())
    web.clock.advance()
    web.sink.refuse("550 5.1.1 No such user", 1)
    outgoing.flush(web.clock())
    assert outbox_of(web, review).state == "failed"
    listed = items(clerk.get("/attention").text)
    assert f"outbox-{row.id}" in listed and f"review-{review}" not in listed
    assert f"outbox-{row.id}" not in items(clerk.get("/attention?handled=1").text)


def test_a_queued_reply_is_cancelled_and_no_key_is_shown(web):
    replied = decide(web, "maru", mail("35075-00001M", "〇〇浄水場修繕工事"))
    Outgoing(web.config, web.store).queue(web.clock())  # rendered, not flushed yet
    queued = outbox_of(web, replied)
    assert queued.state == "queued"
    message = EmailMessage()
    message["From"] = "tanto@maru.example.jp"
    message["Subject"] = "認証キー Z28YUEAJ38ux の件（全角 Ｚ２８ＹＵＥＡＪ３８ｕｘ）"
    message["Message-ID"] = make_msgid(domain="maru.example.jp")
    message.set_content("本文\n")
    held = web.ledger.receive("maru", message.as_bytes(), now=web.clock()).id
    for _ in range(MAX_ATTEMPTS):
        entry = web.ledger.claim(now=web.clock())
        web.ledger.fail(held, "ValueError: cannot read Z28YUEAJ38ux", attempt=entry.attempts)
    clerk = web.login("maru-clerk")
    page = clerk.get("/attention").text
    assert {f"outbox-{queued.id}", f"quarantine-{held}"} <= items(page)
    assert "Z28YUEAJ38ux" not in page and "Ｚ２８ＹＵＥＡＪ３８ｕｘ" not in page
    assert "Z28Y********" in page
    assert "取り消しました" in flash_after(clerk, act(clerk, "outbox", queued.id, "cancel"))
    assert outbox_of(web, replied).state == "cancelled"
    assert reply_of(web, replied).state == "cancelled"
    send(web)
    assert web.sink.accepted == []  # never sent


def test_a_look_at_a_handled_item_does_not_bring_it_back(tmp_path):
    """Only the item actions reopen a handled item; a raw download of its mail does not."""
    store = Store.open(f"sqlite:///{tmp_path / 'audit.db'}", secret=TEST_SECRET)
    audit, at = Audit(store.engine), datetime.now(UTC)
    audit.write("maru-clerk", "handled", at=at, target="ledger:7", ledger_id=7, detail="確認済み")
    audit.write("maru-clerk", "raw_downloaded", at=at, target="ledger:7", ledger_id=7)
    assert audit.handled(["ledger:7"]) == {"ledger:7": at}
    audit.write("maru-clerk", "retry", at=at, target="ledger:7", ledger_id=7)
    assert audit.handled(["ledger:7"]) == {}
    store.close()

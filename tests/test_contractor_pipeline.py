"""The contractor-side pipeline without mail servers: ledger → decision → submissions.

Unroutable notices and discrepancies reach the staff, answers that lost their thread are
matched by number only from the issuer's domain, and the reminder and the digest list the
right submissions; on SQLite and PostgreSQL. A relay refusing a submission for good (a real
aiosmtpd sink answering 550) fails it and tells the staff.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select, update

from mailbot.auth import Requirement
from mailbot.config import Config, load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import ledger as ledger_table
from mailbot.store.schema import outbox, submissions
from parsers import Reader

from .configs import CONTRACTOR, submitting_issuer
from .test_submission_forms import mail

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

# Tuesday 2026-11-24 10:00 JST: inside the default window.
TUESDAY = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def contractor_toml(contractor_extra: str) -> str:
    """The contractor side's configuration (a format string: url, spool, port), with
    `contractor_extra` added to its [contractor] table."""
    return """
[store]
url = "{url}"
[spool]
dir = "{spool}"
[smtp]
host = "127.0.0.1"
port = {port}
""" + CONTRACTOR + contractor_extra + submitting_issuer("city", "〇〇市") + """[[mailboxes]]
name = "queue"
role = "contractor"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["denshi@maru.example.jp"]
"""


CONFIG = contractor_toml("remind_after_days = 2\n")


def trusting(config: Config) -> Config:
    """`config` with `[auth] require = "none"`: these tests are about matching and reading
    answers, whose senders sign nothing here (the pipeline has no verdict to give them);
    authentication itself is tests/test_contractor_auth.py's."""
    return replace(config, auth=replace(config.auth, require=Requirement.NONE))


def make_side(store, store_url, tmp_path, sink, extra: str = "",  # noqa: ANN001
              now: datetime = TUESDAY):
    """Config, store and a `feed(raw)` that decides one mail with the clock stopped at `now`
    (the code under test never reads the wall clock here)."""
    path = tmp_path / "mailbot.toml"
    text = CONFIG.format(url=store_url, spool=tmp_path / "spool", port=sink.settings.port)
    path.write_text(text.replace("[[mailboxes]]", extra + "[[mailboxes]]", 1), encoding="utf-8")
    config = trusting(load_config(path))
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    pipeline = Pipeline(config, store, ledger, Reader(), clock=lambda: now)

    def feed(raw: bytes) -> dict:
        row = ledger.receive("queue", raw).id
        while pipeline.process_one():
            pass
        return json.loads(ledger.get(row).decision)

    store.apply([GuaranteeEvent("35075-00001M", "new", "Z28YUEAJ38ux", issuer="〇〇市",
                                source="t")])
    return config, store, feed


@pytest.fixture
def side(store, store_url, tmp_path, sink):
    return make_side(store, store_url, tmp_path, sink)


def select_all(store, table, *where) -> list:  # noqa: ANN001
    with store.engine.connect() as conn:
        return list(conn.execute(select(table).where(*where).order_by(table.c.id)))


def staff_mail(store) -> list[str]:  # noqa: ANN001
    return [message_from_bytes(r.raw, policy=policy.default).get_body(("plain",)).get_content()
            for r in select_all(store, outbox, outbox.c.kind.in_(("alert", "digest")))]


def answer(text: str, sender: str = "kensa@city.example.jp", subject: str = "Re: 提出") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "denshi@maru.example.jp"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    message.set_content(text)
    return message.as_bytes()


def submitted(store) -> None:  # noqa: ANN001
    """As if the outbox had sent every queued submission at TUESDAY."""
    with store.engine.begin() as conn:
        assert conn.execute(update(submissions).where(submissions.c.state == "queued")
                            .values(state="sent", sent_at=TUESDAY)).rowcount


def test_unroutable_notice_reaches_the_staff_with_the_reason(side):
    config, store, feed = side
    record = feed(mail("35075-09999M", "村道工事"))
    assert record["status"] == "unroutable"
    [row] = select_all(store, submissions)
    assert row.state == "unroutable" and row.issuer is None
    [text] = staff_mail(store)
    assert "提出先を決められないお知らせ" in text and "35075-09999M" in text
    assert "提出先の発注者を特定できませんでした" in text
    assert "保証データ: この保証契約番号の登録なし" in text


def test_answers_without_thread_match_only_from_the_issuers_domain(side):
    config, store, feed = side
    feed(mail("35075-00001M", "〇〇浄水場"))
    submitted(store)
    # Staff forward the same notice again (it names the number): not an answer, no resend.
    again = feed(mail("35075-00001M", "〇〇浄水場").replace(b"Message-ID: <", b"Message-ID: <x"))
    assert again["status"] == "duplicate"
    assert select_all(store, submissions)[0].state == "sent"
    # The issuer's clerk answers by hand in a new mail.
    record = feed(answer("35075-00001M について、認証キーが一致しません。再送をお願いします。"))
    assert record["status"] == "answer"
    assert record["answers"][0]["matched_by"] == "number"
    assert select_all(store, submissions)[0].state == "discrepancy"
    assert any("一致しません" in text for text in staff_mail(store))


def test_text_answers_are_classified_and_quotes_ignored(side):
    config, store, feed = side
    feed(mail("35075-00001M", "〇〇浄水場"))
    submitted(store)
    feed(answer("35075-00001M 確認しました。\n\n> 不備があれば再送します\n"))
    assert select_all(store, submissions)[0].state == "confirmed"
    assert staff_mail(store) == []
    feed(answer("35075-00001M の件、後ほどお電話します。"))
    assert select_all(store, submissions)[0].state == "answered"
    assert any("返信あり（内容未判定）" in text for text in staff_mail(store))


def test_issuer_mail_that_answers_nothing_submits_nothing(side):
    config, store, feed = side
    raw = mail("35075-00001M", "〇〇浄水場").replace(b"tanto@maru.example.jp",
                                                   b"kensa@city.example.jp")
    record = feed(raw)
    assert record["status"] == "ignored" and "issuer's domain" in record["reason"]
    assert select_all(store, submissions) == []


def test_reminder_after_n_business_days_once_then_again(side):
    config, store, feed = side
    from mailbot.daemon import Daemon

    feed(mail("35075-00001M", "〇〇浄水場"))
    submitted(store)
    submitter = Outgoing(config, store).submitter
    assert submitter.remind(TUESDAY + timedelta(days=1)) == 0  # Wednesday: 1 business day
    thursday = TUESDAY + timedelta(days=2)
    assert submitter.remind(thursday) == 1
    assert submitter.remind(thursday + timedelta(hours=1)) == 0  # once
    [text] = staff_mail(store)
    assert "2営業日以上" in text and "35075-00001M" in text
    # Then again two business days later: Friday counts one, the weekend none.
    assert submitter.remind(thursday + timedelta(days=1)) == 0  # Friday
    assert submitter.remind(thursday + timedelta(days=2)) == 0  # Saturday: window closed
    assert submitter.remind(thursday + timedelta(days=4)) == 1  # Monday
    assert select_all(store, submissions)[0].reminders == 2
    assert Daemon  # the daemon schedules remind_tick every REMIND_MINUTES


def test_digest_lists_open_and_what_needs_a_person(side):
    config, store, feed = side
    feed(mail("35075-00001M", "〇〇浄水場"))
    feed(mail("35075-09999M", "村道工事"))
    submitted_rows = select_all(store, submissions, submissions.c.state == "queued")
    with store.engine.begin() as conn:
        conn.execute(update(submissions).where(submissions.c.id == submitted_rows[0].id)
                     .values(state="sent", sent_at=TUESDAY))
    assert Outgoing(config, store).submitter.digest(TUESDAY + timedelta(hours=1))
    digest = staff_mail(store)[-1]
    assert "返信待ちの提出（1件）" in digest and "35075-00001M → 〇〇市" in digest
    assert "担当者の対応が必要なもの（1件）" in digest and "35075-09999M：提出先不明" in digest


def refused_submission(side, sink) -> Outgoing:  # noqa: ANN001
    """A notice submitted, and the relay refusing the issuer's address for good."""
    config, store, feed = side
    feed(mail("35075-00001M", "〇〇浄水場"))
    sink.rcpt_answers["keiyaku@city.example.jp"] = "550 5.1.1 no such user"
    replier = Outgoing(config, store)
    replier.flush(TUESDAY)
    return replier


def test_a_refused_submission_fails_and_the_staff_hear_of_it(side, sink):
    config, store, feed = side
    replier = refused_submission(side, sink)
    [row] = select_all(store, submissions)
    assert row.state == "failed" and "550" in row.reason
    alert = staff_mail(store)[-1]
    assert "提出メールを送信できませんでした" in alert and "keiyaku@city.example.jp" in alert
    replier.flush(TUESDAY)
    assert [m[1] for m in sink.accepted] == [["jimu@maru.example.jp"]]
    decided = select_all(store, ledger_table)[0]
    assert json.loads(decided.decision)["status"] == "submitted"


def test_cli_lists_shows_and_replays_submissions(side, tmp_path):
    from .test_intake_cli import mailbot

    config, store, feed = side
    path = str(config.path)
    assert mailbot("submissions", "list", "--config", path).stdout == "no submissions\n"
    feed(mail("35075-00001M", "〇〇浄水場"))
    feed(mail("35075-09999M", "村道工事"))
    listing = mailbot("submissions", "list", "--config", path)
    assert listing.returncode == 0, listing.stderr
    header, *lines = listing.stdout.splitlines()
    assert header.split("\t")[:4] == ["ID", "STATE", "NUMBER", "ISSUER"]
    assert lines[0].split("\t")[1:4] == ["queued", "35075-00001M", "city"]
    assert lines[1].split("\t")[1:4] == ["unroutable", "35075-09999M", "-"]
    as_json = json.loads(mailbot("submissions", "list", "--config", path, "--state",
                                 "unroutable", "--json").stdout)
    assert [s["guarantee_number"] for s in as_json] == ["35075-09999M"]
    none = mailbot("submissions", "list", "--config", path, "--state", "confirmed")
    assert none.stdout == "no submissions in state confirmed\n"
    assert "notice_hash" not in as_json[0]
    show = mailbot("submissions", "show", "1", "--config", path)
    assert "to_addr    keiyaku@city.example.jp" in show.stdout
    assert "route      保証データ: 発注者「〇〇市」" in show.stdout
    assert mailbot("submissions", "show", "99", "--config", path).returncode == 1
    check = mailbot("config", "check", path)
    assert "    submission: otherwise → keiyaku@city.example.jp" in check.stdout, check.stderr
    assert "body lines 受注者 / 担当者氏名・連絡先 / 工事名 / 保証名称" in check.stdout
    status = mailbot("status", "--config", path)
    assert "submissions: queued 1, unroutable 1" in status.stdout, status.stderr
    # Replay says what would happen to a mail, and writes nothing.
    eml = tmp_path / "notice.eml"
    eml.write_bytes(mail("35075-00001M", "〇〇浄水場").replace(b"Message-ID: <", b"Message-ID: <r"))
    replay = mailbot("replay", "--config", path, "--mailbox", "queue", str(eml))
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.startswith(f"{eml}: would record\n")  # nothing is written
    assert ("35075-00001M: duplicate of submission 1 (queued) → keiyaku@city.example.jp "
            "[【電子保証】〇〇浄水場]") in replay.stdout
    assert len(select_all(store, submissions)) == 2


def test_a_disputed_notice_forwarded_again_is_submitted_again(side):
    config, store, feed = side
    feed(mail("35075-00001M", "〇〇浄水場"))
    first = select_all(store, submissions)[0].message_id
    submitted(store)
    feed(answer("35075-00001M の認証キーが一致しません。", subject="Re: 【電子保証】〇〇浄水場"))
    assert select_all(store, submissions)[0].state == "discrepancy"
    record = feed(mail("35075-00001M", "〇〇浄水場").replace(b"Message-ID: <", b"Message-ID: <y"))
    assert record["status"] == "submitted"
    assert any(line.startswith("再提出（前回: 相違あり") for line in record["submissions"][0]["trail"])
    [row] = select_all(store, submissions)
    assert (row.state, row.answer, row.sent_at) == ("queued", None, None)
    assert row.message_id != first
    sent = select_all(store, outbox, outbox.c.kind == "submission")
    assert [(r.message_id, r.state) for r in sent] == [(first, "cancelled"),
                                                       (row.message_id, "queued")]
    # A late answer in the old thread reaches the staff but does not settle the new one.
    late = answer("確認しました。", subject="Re: 【電子保証】〇〇浄水場")
    late = late.replace(b"Subject:", f"In-Reply-To: {first}\nSubject:".encode(), 1)
    record = feed(late)
    assert record["status"] == "ignored"
    assert record["answers"][0]["matched_by"] == "earlier-thread"
    assert select_all(store, submissions)[0].state == "queued"
    assert "再提出する前の提出メールへの返信です" in staff_mail(store)[-1]


def test_a_submission_waits_for_its_issuers_own_window(store, store_url, sink, tmp_path):
    config, store, feed = make_side(store, store_url, tmp_path, sink,
                                    '[issuers.city.submission.window]\nstart = "10:00"\n'
                                    'end = "11:00"\n\n', now=TUESDAY - timedelta(hours=1))
    feed(mail("35075-00001M", "〇〇浄水場"))  # decided at 09:00 JST
    [row] = select_all(store, outbox)
    assert row.window == "issuer:city"
    replier = Outgoing(config, store)
    replier.flush(TUESDAY - timedelta(minutes=30))  # 09:30 JST: the default window is open
    assert sink.accepted == []
    replier.flush(TUESDAY + timedelta(minutes=30))  # 10:30 JST: the issuer's is open too
    assert [rcpts for _sender, rcpts, _raw in sink.accepted] == [["keiyaku@city.example.jp"]]
    assert select_all(store, submissions)[0].state == "sent"


def test_mail_without_a_readable_notice_tells_the_staff_what_to_do(side):
    import io

    import pyzipper

    config, store, feed = side
    record = feed(answer("電子保証（認証キー）の発行が完了しました。ダウンロードしてください。",
                         sender="info@hosho.example.jp", subject="電子保証 発行完了のお知らせ"))
    assert record["status"] == "no_notice"
    assert "お知らせPDFのない電子保証のメール" in staff_mail(store)[-1]
    buffer = io.BytesIO()
    with pyzipper.AESZipFile(buffer, "w", encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(b"pass")
        archive.writestr("お知らせ.pdf", b"%PDF-1.4")
    locked = EmailMessage()
    locked["From"] = "tanto@maru.example.jp"
    locked["Subject"] = "お知らせ"
    locked.set_content("添付します")
    locked.add_attachment(buffer.getvalue(), maintype="application", subtype="zip",
                          filename="書類.zip")
    feed(locked.as_bytes())
    text = staff_mail(store)[-1]
    assert "お知らせを読み取れないメール" in text
    assert "パスワード付きのZIPファイルです：添付ファイル「書類.zip」" in text
    # Mail about something else is filed for a person, without an alert.
    assert feed(answer("来週の打ち合わせの件", sender="eigyo@maru.example.jp",
                       subject="打ち合わせ"))["status"] == "no_notice"
    assert len(staff_mail(store)) == 2


def test_old_mail_at_a_first_sync_is_not_submitted(side):
    config, store, feed = side
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    row = ledger.receive("queue", mail("35075-00001M", "〇〇浄水場"), reply_wanted=False).id
    pipeline = Pipeline(config, store, ledger, Reader(), clock=lambda: TUESDAY)
    while pipeline.process_one():
        pass
    record = json.loads(ledger.get(row).decision)
    assert record["status"] == "backfill"
    assert [n["guarantee_number"] for n in record["notices"]] == ["35075-00001M"]
    assert select_all(store, submissions) == [] and select_all(store, outbox) == []
    # Forwarded again now, it is submitted.
    again = mail("35075-00001M", "〇〇浄水場").replace(b"Message-ID: <", b"Message-ID: <n", 1)
    assert feed(again)["status"] == "submitted"

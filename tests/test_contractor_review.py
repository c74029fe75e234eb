"""Regressions from the review of the contractor side: who may settle a submission, races
and retries that could submit a notice twice, and config values that only failed at run time.
"""

from __future__ import annotations

import threading
from email import message_from_bytes, policy

import pytest
from sqlalchemy import update

from mailbot.config import ConfigError, load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outbox.outbox import Outbox
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import outbox, submissions
from parsers import Reader

from .test_contractor_pipeline import (
    CONFIG,
    TUESDAY,
    answer,
    make_side,
    refused_submission,
    select_all,
    staff_mail,
    submitted,
)
from .test_submission_forms import mail

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks


@pytest.fixture
def side(store, store_url, tmp_path, sink):
    return make_side(store, store_url, tmp_path, sink)


def in_thread(raw: bytes, message_id: str) -> bytes:
    return raw.replace(b"Subject:", f"In-Reply-To: {message_id}\nSubject:".encode(), 1)


def test_only_the_issuer_settles_a_submission(side):
    config, store, feed = side
    feed(mail("35075-00001M", "〇〇浄水場"))
    submitted(store)
    [sub] = select_all(store, submissions)
    # An out-of-office in the thread says 受け付けました: not a verdict.
    away = answer("お問い合わせを受け付けました。担当者は不在です。")
    away = away.replace(b"Subject:", b"Auto-Submitted: auto-replied\nSubject:", 1)
    assert feed(in_thread(away, sub.message_id))["status"] == "ignored"
    assert select_all(store, submissions)[0].state == "sent"
    # Our own staff replying to all in the thread: never an answer.
    thanks = answer("確認いたしました。", sender="jimu@maru.example.jp")
    assert feed(in_thread(thanks, sub.message_id))["status"] != "answer"
    assert select_all(store, submissions)[0].state == "sent"
    # Someone outside the issuer's domain writing in the thread: not the issuer, so no
    # state changes (a person reads it and checks with the issuer).
    other = answer("確認しました。", sender="someone@elsewhere.example.jp")
    assert feed(in_thread(other, sub.message_id))["answers"][0]["verdict"] == "unauthenticated"
    assert "発注者からの返信か確認できないメール" in staff_mail(store)[-1]
    # Reply-To does not make a mail the issuer's.
    spoof = answer("35075-00001M 確認しました。", sender="x@elsewhere.example.jp")
    spoof = spoof.replace(b"Subject:", b"Reply-To: kensa@city.example.jp\nSubject:", 1)
    assert feed(spoof)["status"] != "answer"
    assert select_all(store, submissions)[0].state == "sent"


def test_a_bounce_in_the_thread_alone_fails_nothing(side):
    """Anyone can write a bounce: only one to the submission's tokened bounce address that
    names its Message-ID fails it (tests/test_contractor_auth.py); this one alerts."""
    config, store, feed = side
    feed(mail("35075-00001M", "〇〇浄水場"))
    submitted(store)
    [sub] = select_all(store, submissions)
    bounce = answer("Delivery to the following recipient failed permanently:\n"
                    " keiyaku@city.example.jp\n", sender="mailer-daemon@relay.example.jp",
                    subject="Delivery Status Notification (Failure)")
    bounce = bounce.replace(b"Subject:", b"Auto-Submitted: auto-replied\nSubject:", 1)
    record = feed(in_thread(bounce, sub.message_id))
    assert record["status"] == "ignored" and "proves nothing" in record["reason"]
    assert select_all(store, submissions)[0].state == "sent"
    text = staff_mail(store)[-1]
    assert "配送エラーらしきメールが届きました" in text and "35075-00001M" in text


def test_answers_from_a_subdomain_count_and_settle_the_newest_notice(side):
    config, store, feed = side
    feed(mail("35075-00001M", "〇〇浄水場"))
    submitted(store)
    # The guarantee is amended (new key): a new notice, a second submission.
    store.apply([GuaranteeEvent("35075-00001M", "amend", "N3wKeyAmend01", issuer="〇〇市",
                                source="t")])
    feed(mail("35075-00001M", "〇〇浄水場", key="N3wKeyAmend01"))
    submitted(store)
    record = feed(answer("35075-00001M 確認しました。", sender="kensa@mail.city.example.jp"))
    assert record["status"] == "answer" and len(record["answers"]) == 1
    old, new = select_all(store, submissions)
    assert (old.state, new.state) == ("sent", "confirmed")


def test_redirecting_a_mail_again_is_not_a_second_delivery(side):
    config, store, feed = side
    raw = mail("35075-09999M", "村道工事")
    assert feed(raw)["status"] == "unroutable"
    store.apply([GuaranteeEvent("35075-09999M", "new", "Z28YUEAJ38ux", issuer="〇〇市",
                                source="t")])
    redirected = (b"Resent-From: tanto@maru.example.jp\r\nResent-Message-ID: <r1@maru.example.jp>\r\n"
                  b"Resent-Date: Tue, 24 Nov 2026 10:00:00 +0900\r\n" + raw)
    assert feed(redirected)["status"] == "submitted"
    # A second delivery of the very same message (trace headers only) is still one.
    again = b"Received: from relay.example.jp by mx.maru.example.jp\r\n" + redirected
    assert feed(again)["status"] == "duplicate"


def test_two_colleagues_resending_at_once_make_one_submission(side, monkeypatch):
    config, store, feed = side
    feed(mail("35075-00001M", "〇〇浄水場"))
    submitted(store)
    feed(answer("35075-00001M の認証キーが一致しません。"))
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    pipeline = Pipeline(config, store, ledger, Reader(), clock=lambda: TUESDAY)
    # Hold both decisions just before their outbox rows, so both have read the submission.
    barrier = threading.Barrier(2, timeout=3)
    real_insert = Outbox.insert

    def held_insert(self, conn, kind, *args, **kwargs):  # noqa: ANN001
        if kind == "submission":
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
        return real_insert(self, conn, kind, *args, **kwargs)

    monkeypatch.setattr(Outbox, "insert", held_insert)
    for tag in (b"<a", b"<b"):
        ledger.receive("queue", mail("35075-00001M", "〇〇浄水場").replace(
            b"Message-ID: <", b"Message-ID: " + tag, 1))
    threads = [threading.Thread(target=pipeline.process_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    while pipeline.process_one():
        pass
    queued = select_all(store, outbox, outbox.c.kind == "submission", outbox.c.state == "queued")
    assert len(queued) == 1
    assert queued[0].message_id == select_all(store, submissions)[0].message_id


def test_retrying_a_replaced_submission_is_refused(side, sink):
    config, store, feed = side
    replier = refused_submission(side, sink)
    [failed] = select_all(store, outbox, outbox.c.kind == "submission")
    assert failed.state == "failed"
    feed(mail("35075-00001M", "〇〇浄水場").replace(b"Message-ID: <", b"Message-ID: <z", 1))
    assert select_all(store, outbox, outbox.c.id == failed.id)[0].state == "cancelled"
    assert not replier.outbox.retry(failed.id, TUESDAY)
    with store.engine.begin() as conn:  # even a failed row that was never cancelled
        conn.execute(update(outbox).where(outbox.c.id == failed.id).values(state="failed"))
    assert not replier.outbox.retry(failed.id, TUESDAY)


def test_subject_rules_that_fail_on_real_values_are_caught_at_load(tmp_path):
    path = tmp_path / "mailbot.toml"
    text = CONFIG.format(url="sqlite:///x.db", spool="spool", port=25)
    path.write_text(text.replace('subject = "【電子保証】{{ project_name }}"',
                                 'subject = "{{ project_name | replace(\\"（仮称）\\") }}"'),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"issuers\.city\.submission\.subject"):
        load_config(path)


@pytest.mark.parametrize("key", ["name", "from_name", "person", "contact"])
def test_line_breaks_in_contractor_values_are_refused_at_load(tmp_path, key):
    path = tmp_path / "mailbot.toml"
    text = CONFIG.format(url="sqlite:///x.db", spool="spool", port=25)
    head, _, tail = text.partition("[contractor]\n")
    section, _, rest = tail.partition("\n[")
    lines = [ln for ln in section.splitlines() if not ln.startswith(f"{key} = ")]
    lines.append(f'{key} = "〇〇建設\\nBcc: spy@evil.example.jp"')
    path.write_text(head + "[contractor]\n" + "\n".join(lines) + "\n[" + rest,
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"contractor\.{key}"):
        load_config(path)


def test_iso_2022_jp_issuers_get_iso_2022_jp_headers(side):
    config, store, feed = side
    from .test_submission_forms import CONFIG as FORMS
    from .test_submission_forms import plan

    folder = config.path.parent / "forms"
    (folder / "extra").mkdir(parents=True)
    (folder / "extra" / "委任状.pdf").write_bytes(b"%PDF-1.4")
    (folder / "mailbot.toml").write_text(FORMS, encoding="utf-8")
    forms = load_config(folder / "mailbot.toml")
    p = plan(mail("35075-00003M", "△△町道①号線舗装工事", text="△△町役場へ\n"), forms, store)
    head = p.raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" not in head.lower() and b"=?iso-2022-jp?" in head.lower()
    message = message_from_bytes(p.raw, policy=policy.default)
    assert str(message["Subject"]) == "電子保証認証キー:△△町道(1)号線舗装工事"
    assert message["From"].addresses[0].display_name == "〇〇建設株式会社"

"""A reply (or a submission) that cannot be rendered ends somewhere a person sees it.

The admin's template set (`[templates] dir`) has a confirmation template that raises. The
reply request must end `failed` with the error after one attempt, raise exactly one staff
alert (sent to a real aiosmtpd sink), be listed in the staff digest and counted by
`mailbot status` (run as the console script); once the template is fixed,
`mailbot outbox retry --request ID` renders it again and the contractor gets the reply.
On the contractor side a submission template that raises sends the notice to the staff
with the reason: no crash, no quarantine. Every clock is injected; SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import ledger as ledger_table
from mailbot.store.schema import reply_requests, submissions
from parsers import Reader

from .configs import issuer_config, smtp_config
from .conftest import TEST_SECRET
from .test_contractor_pipeline import make_side, select_all, staff_mail
from .test_submission_forms import mail as contractor_mail

JST = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 26, 23, 30, tzinfo=JST)  # a Saturday night in the year-end closure
SMTP = smtp_config("{port}", digest=True) + '[templates]\ndir = "{templates}"\n'
BROKEN = "{{ notices[0].no_such_field.again }}\n"  # StrictUndefined: raises when rendered


def mailbot(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    return subprocess.run([sys.executable, "-m", "mailbot.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def notice(subject: str = "【電子保証】〇〇浄水場△△修繕工事") -> bytes:
    message = EmailMessage()
    message["From"] = "tanto@maru-kensetsu.example.jp"
    message["To"] = "keiyaku@issuer.example.jp"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="maru-kensetsu.example.jp")
    message.set_content("保証契約番号：35075-00001M\n認証キー：Z28YUEAJ38ux\n\n〇〇建設 株式会社\n")
    return message.as_bytes()


def issuer_side(store, store_url, tmp_path, sink):  # noqa: ANN001
    templates = tmp_path / "templates"
    (templates / "default").mkdir(parents=True)
    (templates / "default" / "confirmation.txt.j2").write_text(BROKEN, encoding="utf-8")
    path = tmp_path / "mailbot.toml"
    text = issuer_config(store_url, tmp_path / "spool").replace(
        '[issuers.maru]\nname = "〇〇市"\n',
        '[issuers.maru]\nname = "〇〇市"\nstaff = ["kensa@issuer.example.jp"]\n')
    path.write_text(SMTP.format(port=sink.settings.port, templates=templates) + text,
                    encoding="utf-8")
    store.apply([GuaranteeEvent("35075-00001M", "new", "Z28YUEAJ38ux", issuer="〇〇市",
                                source="t")])
    config = load_config(path)
    return config, path, templates


def test_an_unrenderable_reply_fails_once_alerts_once_and_is_seen(store, store_url, tmp_path,
                                                                   sink):
    config, path, templates = issuer_side(store, store_url, tmp_path, sink)
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    row = ledger.receive("keiyaku", notice(), now=NOW).id
    pipeline = Pipeline(config, store, ledger, Reader())
    while pipeline.process_one():
        pass
    assert json.loads(ledger.get(row).decision)["status"] == "verified"

    replier = Outgoing(config, store)
    for minute in range(3):  # three outbox ticks: one failure, one alert, never again
        replier.queue(NOW + timedelta(minutes=minute))
        replier.flush(NOW + timedelta(minutes=minute))
    with store.engine.connect() as conn:
        request = conn.execute(select(reply_requests)).one()
    assert request.state == "failed" and "UndefinedError" in request.error
    assert len(sink.accepted) == 1
    _from, to, raw = sink.accepted[0]
    alert = message_from_bytes(raw, policy=policy.default)
    assert to == ["kensa@issuer.example.jp"]
    assert str(alert["Subject"]) == "【電子保証受付・要対応】返信メールを作成できませんでした"
    text = alert.get_content()
    assert "tanto@maru-kensetsu.example.jp" in text and "UndefinedError" in text
    assert f"mailbot outbox retry --request {request.id}" in text

    status = mailbot("status", "--config", str(path))
    assert status.returncode == 0, status.stderr
    assert "keiyaku: decided 1; backlog 1 (stuck: replies not rendered 1)" in status.stdout
    assert "total: backlog 1 (stuck: replies not rendered 1)" in status.stdout
    as_json = json.loads(mailbot("status", "--config", str(path), "--json").stdout)
    assert as_json["keiyaku"]["stuck"] == {"replies not rendered": 1}
    listing = mailbot("outbox", "list", "--config", str(path), "--state", "failed")
    assert listing.stdout.splitlines()[1].startswith(f"request {request.id}\treply\tfailed\t")

    # The digest (it waits for business hours) lists it.
    later = NOW + timedelta(hours=1)
    assert replier.digest(later) == 1
    replier.flush(later)  # the window is closed: the digest waits, and status says so
    status = mailbot("status", "--config", str(path))
    assert ("outgoing mail of no received message (digests, alerts): backlog 1 "
            "(waiting: mail to send 1)") in status.stdout
    assert ("total: backlog 2 (waiting: mail to send 1; stuck: replies not rendered 1)"
            in status.stdout)
    replier.flush(replier.outbox.window.next_open(later) + timedelta(minutes=1))
    assert len(sink.accepted) == 2
    digest = message_from_bytes(sink.accepted[1][2], policy=policy.default).get_content()
    assert "送信できなかった返信（1件）" in digest
    assert "返信メールを作成できませんでした" in digest and "tanto@maru-kensetsu" in digest

    # Fixed: the admin renders it again; the contractor gets the reply, the backlog is 0.
    (templates / "default" / "confirmation.txt.j2").unlink()
    retried = mailbot("outbox", "retry", "--request", str(request.id), "--config", str(path))
    assert retried.returncode == 0, retried.stderr
    replier.queue(later)
    replier.flush(later)
    assert len(sink.accepted) == 3 and sink.accepted[2][1] == ["tanto@maru-kensetsu.example.jp"]
    assert ledger.get(row).state == "replied"
    status = mailbot("status", "--config", str(path))
    assert "keiyaku: replied 1; backlog 0" in status.stdout
    assert "total: backlog 0" in status.stdout


def test_the_alert_gets_out_when_the_alert_template_is_broken_too(store, store_url,
                                                                   tmp_path, sink):
    config, _path, templates = issuer_side(store, store_url, tmp_path, sink)
    (templates / "default" / "alert.txt.j2").write_text(BROKEN, encoding="utf-8")
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    ledger.receive("keiyaku", notice(), now=NOW)
    pipeline = Pipeline(config, store, ledger, Reader())
    while pipeline.process_one():
        pass
    replier = Outgoing(config, store)
    replier.queue(NOW)
    replier.flush(NOW)
    [(_from, _to, raw)] = sink.accepted
    assert "返信メールを作成できませんでした" in message_from_bytes(
        raw, policy=policy.default).get_content()


def test_a_hostile_subject_is_no_reason_for_a_failed_reply(store, store_url, tmp_path, sink):
    """NUL, CR/LF, surrogate bytes and raw encoded words in the subject: a correct reply."""
    config, _path, templates = issuer_side(store, store_url, tmp_path, sink)
    (templates / "default" / "confirmation.txt.j2").unlink()
    raw = notice().replace(
        b"Subject: ", b"Subject: \x00=?Shift_JIS?B?gXmTZI5x?= \xff\xfe =?UTF-8?B?5pel?\r\n \r",
        1)
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    row = ledger.receive("keiyaku", raw, now=NOW).id
    pipeline = Pipeline(config, store, ledger, Reader())
    while pipeline.process_one():
        pass
    assert ledger.get(row).state == "decided"
    replier = Outgoing(config, store)
    replier.queue(NOW)
    replier.flush(NOW)
    [(_from, to, sent)] = sink.accepted
    reply = message_from_bytes(sent, policy=policy.default)
    assert to == ["tanto@maru-kensetsu.example.jp"]
    subject = str(reply["Subject"])
    assert subject.startswith("Re: 【電子") and "=?" not in subject and "\x00" not in subject


@pytest.mark.parametrize("broken", [("submission",), ("submission", "contractor_alert")])
def test_an_unrenderable_submission_goes_to_the_staff_with_the_reason(broken, store, store_url,
                                                                       tmp_path, sink):
    """Also when the staff's alert template is broken too: ours renders it."""
    templates = tmp_path / "templates"
    (templates / "default").mkdir(parents=True)
    for name in broken:
        (templates / "default" / f"{name}.txt.j2").write_text(BROKEN, encoding="utf-8")
    _config, store, feed = make_side(store, store_url, tmp_path, sink,
                                     f'[templates]\ndir = "{templates}"\n')
    record = feed(contractor_mail("35075-00001M", "〇〇浄水場△△修繕工事"))
    assert record["status"] == "unroutable"
    [row] = select_all(store, submissions)
    assert row.state == "unroutable" and "提出メールを作成できません" in row.reason
    with store.engine.connect() as conn:
        assert conn.execute(select(ledger_table.c.state)).scalar_one() == "decided"
    [text] = staff_mail(store)
    assert "提出メールを作成できません" in text and "UndefinedError" in text

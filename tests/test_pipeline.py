"""The pipeline without servers: routing, decisions, masking, loop safety, `mailbot replay`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.pipeline.decide import decide, reply_blocked
from mailbot.pipeline.facts import mail_facts
from mailbot.samples.catalog import all_samples
from mailbot.store import GuaranteeEvent
from mailbot.store.schema import outbox
from parsers import Reader

from .conftest import TEST_SECRET

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

SAMPLES = {s.name: s for s in all_samples(["ejcs_cid", "zip_encrypted", "two_pdfs"])}
CONFIG = """
[store]
url = "{url}"
[issuers.maru]
name = "〇〇市"
departments = {{ "前払金保証" = "会計課" }}
[issuers.other]
name = "△△町"
[[mailboxes]]
name = "keiyaku"
role = "issuer"
issuer = "maru"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["keiyaku@issuer.example.jp"]
[[routes]]
name = "electronic guarantee subject"
subject = "^【電子保証】"
department = "契約検査課"
notify = ["kensa@issuer.example.jp"]
[[routes]]
name = "town office mail"
sender_domain = "town.example.jp"
issuer = "other"
stop = true
[[routes]]
name = "never reached for the town"
folder = "電子保証/その他"
"""


@pytest.fixture
def setup(store, store_url, tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text(CONFIG.format(url=store_url), encoding="utf-8")
    config = load_config(path)
    notice = SAMPLES["ejcs_cid"].expected["notices"][0]
    store.apply([GuaranteeEvent(
        notice["guarantee_number"], "new", notice["auth_key"], kind=notice["kind"],
        issuer="〇〇市", contractor=notice["contractor"], project_name=notice["project_name"],
        source="t")])
    return config, store, path


def run_decide(setup, raw, **kw):
    config, store, _ = setup
    mailbox = config.mailbox("keiyaku")
    facts = mail_facts(raw, mailbox.name)
    return decide(raw, facts, mailbox, config, store, Reader(), datetime.now(UTC), **kw)


def test_a_verified_notice_is_routed_and_answered(setup):
    decision = run_decide(setup, SAMPLES["ejcs_cid"].data)
    record = decision.record
    assert decision.status == "verified" and decision.outcomes == ["verified"]
    assert decision.action is None  # an LMTP mailbox has no folder to move to
    assert record["folder"] == "電子保証/その他"  # the last route matched (no stop before it)
    matched = [r["route"] for r in record["routing"]["routes"] if r["matched"]]
    assert matched == ["electronic guarantee subject", "never reached for the town"]
    assert record["routing"]["department"] == "契約検査課"
    assert record["routing"]["notify"] == ["kensa@issuer.example.jp"]
    assert decision.reply.template == "confirmation"
    text = json.dumps(record, ensure_ascii=False) + json.dumps(decision.reply.context,
                                                               ensure_ascii=False)
    assert "Z28YUEAJ38ux" not in text and "Z28Y********" in text


def test_discrepancies_and_problems(setup):
    encrypted = run_decide(setup, SAMPLES["zip_encrypted"].data)
    assert encrypted.status == "discrepancy"
    assert encrypted.reply.context["problems"] == [
        {"code": "encrypted_archive", "origin": "attachment:書類.zip"}
    ]
    unknown = run_decide(setup, SAMPLES["two_pdfs"].data)
    assert unknown.outcomes == ["unknown_number"] and unknown.reply.template == "discrepancy"


def test_route_stop_and_issuer_override(setup):
    raw = SAMPLES["ejcs_cid"].data.replace(b"@maru-kensetsu.example.jp", b"@town.example.jp")
    raw = raw.replace(b"@marukensetsu.example.jp", b"@town.example.jp")
    decision = run_decide(setup, raw)
    trail = decision.record["routing"]["routes"]
    if not trail[1]["matched"]:
        pytest.fail(f"sender domain route did not match: {decision.record['sender']}")
    assert len(trail) == 2  # stop = true ended the list
    assert decision.outcomes == ["issuer_mismatch"]  # verified against △△町 now


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
        ("Precedence: bulk\r\n", "Precedence"),
        ("List-Id: <kouji.example.jp>\r\n", "List-Id"),
        ("Return-Path: <>\r\n", "null sender"),
        ("Reply-To: 田中@example.jp\r\n", "cannot be answered by SMTP"),  # needs SMTPUTF8
    ],
)
def test_no_reply_to_robots(headers, why):
    raw = (f"From: a@maru.example.jp\r\n{headers}Subject: x\r\n\r\n本文\r\n").encode()
    assert why in reply_blocked(mail_facts(raw, "keiyaku"))


def test_no_reply_to_backfilled_mail(setup):
    decision = run_decide(setup, SAMPLES["ejcs_cid"].data, reply_wanted=False)
    assert decision.reply is None and "backfill" in decision.record["reply_skipped"]


def test_replay_cli_prints_each_decision(setup, tmp_path):
    _config, _store, path = setup
    files = []
    for name in ("ejcs_cid", "zip_encrypted"):
        file = tmp_path / f"{name}.eml"
        file.write_bytes(SAMPLES[name].data)
        files.append(str(file))
    env = {**os.environ, "MAILBOT_SECRET": TEST_SECRET.decode()}
    run = subprocess.run([sys.executable, "-m", "mailbot.cli", "replay", "--config", str(path),
                          "--json", *files], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1, run.stderr  # one of them is a discrepancy
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["status"] for r in records] == ["verified", "discrepancy"]
    # A replay is a dry run: it leaves no throttle trace and no ledger row.
    from sqlalchemy import func, select

    from mailbot.store.schema import key_failures, ledger
    with _store_engine(setup) as conn:
        assert conn.execute(select(func.count()).select_from(ledger)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(key_failures)).scalar_one() == 0


def _store_engine(setup):
    return setup[1].engine.connect()


def test_a_routes_notify_addresses_get_a_digest_of_what_it_matched(setup, tmp_path):
    """`notify` on a route: those addresses get a daily digest of the messages the route
    matched (here the notice under 【電子保証】), not of the others, and none on a day with
    nothing routed to them."""
    config, store, _ = setup
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    pipeline = Pipeline(config, store, ledger, Reader())
    other = EmailMessage()
    other["From"] = "tanto@maru-kensetsu.example.jp"
    other["To"] = "keiyaku@issuer.example.jp"
    other["Subject"] = "打合せ日程のご連絡"
    other["Message-ID"] = "<other@maru-kensetsu.example.jp>"
    other.set_content("〇〇建設です。打合せの日程をご連絡します。\n")
    now = datetime.now(UTC)
    outgoing = Outgoing(config, store)
    assert outgoing.digest(now) == 0  # nothing was routed anywhere yet
    for raw in (SAMPLES["ejcs_cid"].data, other.as_bytes()):
        ledger.receive("keiyaku", raw)
    while pipeline.process_one():
        pass
    assert outgoing.digest(now) == 1
    with store.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.to_addrs, outbox.c.raw)
                            .where(outbox.c.kind == "digest")).all()
    assert [row.to_addrs for row in rows] == ["kensa@issuer.example.jp"]
    text = message_from_bytes(rows[0].raw, policy=policy.default).get_content()
    assert "kensa@issuer.example.jp へのお知らせ" in text
    assert "合計：1件" in text and "確認完了" in text
    assert "隔離したメール" not in text  # failures are for the issuer's staff


def test_keys_typed_into_the_subject_are_masked():
    from mailbot.pipeline.decide import mask_keys_in

    keys = ["Z28YUEAJ38ux"]
    assert mask_keys_in("認証キー Z28YUEAJ38ux 送付", keys) == "認証キー Z28Y******** 送付"
    assert mask_keys_in("認証キー Ｚ２８ＹＵＥＡＪ３８ｕｘ", keys) == "認証キー Z28Y********"
    assert mask_keys_in("【電子保証】〇〇工事", keys) == "【電子保証】〇〇工事"  # untouched


def test_a_key_in_the_subject_is_masked_in_the_decision_and_the_reply(setup):
    message = message_from_bytes(SAMPLES["ejcs_cid"].data, policy=policy.SMTP)
    del message["Subject"]
    message["Subject"] = "認証キー Z28YUEAJ38ux"
    decision = run_decide(setup, message.as_bytes())
    assert decision.subject == "認証キー Z28Y********"
    assert decision.record["subject"] == decision.reply.context["subject"] == decision.subject


def test_a_digest_run_taken_over_queues_no_digest_twice(setup, tmp_path):
    """A node that dies in the middle of the day's digest run leaves it to another node,
    which runs the same tick again: the digests the first node queued are not queued a
    second time (their Message-ID is the run's), the rest are. A run with no name (an
    admin's manual one) is a new digest."""
    config, store, _ = setup
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    pipeline = Pipeline(config, store, ledger, Reader())
    ledger.receive("keiyaku", SAMPLES["ejcs_cid"].data)
    while pipeline.process_one():
        pass
    now = datetime.now(UTC)

    def digests() -> list[str]:
        with store.engine.connect() as conn:
            return list(conn.execute(select(outbox.c.message_id)
                                     .where(outbox.c.kind == "digest")).scalars())

    outgoing = Outgoing(config, store)
    assert outgoing.digest(now, "digest d-today") == 1
    first = digests()
    assert Outgoing(config, store).digest(now, "digest d-today") == 1  # the takeover
    assert digests() == first
    assert outgoing.digest(now, "digest d-tomorrow") == 1
    assert outgoing.digest(now) == 1
    assert len(set(digests())) == 3

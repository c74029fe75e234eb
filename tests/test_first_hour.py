"""The first hour of a new user: commands that need no mail password, the demo's config
reused, and the small things a user trips on at a terminal (issue 11)."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mailbot.cli import build_parser
from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import outbox
from parsers import Reader

from .configs import imap_issuer, lmtp_mailbox
from .conftest import TEST_SECRET
from .test_daemon import notice_mail

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "config").glob("*.example.toml"))


def mailbot(*args: str, cwd: Path | None = None, secret: bool = True
            ) -> subprocess.CompletedProcess:
    """The CLI with no mail password in its environment (and the store secret unless
    `secret` is false)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    if secret:
        env["MAILBOT_SECRET"] = TEST_SECRET.decode()
    return subprocess.run([sys.executable, "-m", "mailbot.cli", *args], capture_output=True,
                          text=True, timeout=180, env=env, cwd=cwd)


def answering(key: str, name: str, keys: str = "") -> str:
    """An [issuers.`key`] table (`keys`: more of its keys) and an LMTP mailbox of its own
    named like it: an issuer that answers mail."""
    return f'[issuers.{key}]\nname = "{name}"\n{keys}' + lmtp_mailbox(key)


# -- 1. no mail password needed ---------------------------------------------------------------
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_example_configs_pass_config_check_without_secrets_and_fail_strict(example):
    assert len(EXAMPLES) == 2
    check = mailbot("config", "check", str(example))
    assert check.returncode == 0, check.stderr
    assert "warning (" not in check.stdout and " warning(s))" in check.stdout
    unset = re.findall(r"\[([\w.-]+)\.password_env\] environment variable (\w+) is not set",
                       check.stderr)
    assert unset and all(name.startswith("MAILBOT_") for _where, name in unset)
    strict = mailbot("config", "check", "--strict", str(example))
    assert strict.returncode == 2 and "is not set" in strict.stderr


def test_commands_that_talk_to_no_mail_server_run_without_the_password(tmp_path):
    """An IMAP mailbox whose password variable is unset: status, outbox list, submissions,
    verify and replay work; `mailbot run` refuses at start, naming file and key."""
    path = tmp_path / "mailbot.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n'
                    + imap_issuer("MAILBOT_TEST_UNSET_PASSWORD"), encoding="utf-8")
    eml = tmp_path / "n.eml"
    eml.write_bytes(notice_mail(1))
    for args in (["status"], ["outbox", "list"], ["submissions", "list"],
                 ["verify", "35075-00001M", "Z28YUEAJ38ux"], ["replay", str(eml)]):
        done = mailbot(*args, "--config", str(path))
        assert done.returncode in (0, 1), (args, done.stderr)  # 1: a discrepancy found
        assert "is not set" not in done.stderr, args
    run = mailbot("run", "--config", str(path))
    assert run.returncode == 2
    assert (f"{path}: [mailboxes.keiyaku.password_env] environment variable "
            "MAILBOT_TEST_UNSET_PASSWORD is not set") in run.stderr


# -- 2. the demo's config works afterwards ------------------------------------------------------
def test_the_demo_leaves_a_config_that_reproduces_its_answers(tmp_path):
    demo = mailbot("demo", "--out", "demo-out", cwd=tmp_path, secret=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    config = ["--config", "demo-out/mailbot.toml"]
    secret_file = tmp_path / "demo-out" / "mailbot.secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    status = mailbot("status", *config, cwd=tmp_path, secret=False)
    assert status.returncode == 0 and "total: backlog 0" in status.stdout, status.stderr
    verify = mailbot("verify", "35075-00001M", "Z28YUEAJ38ux", *config, cwd=tmp_path,
                     secret=False)
    assert verify.returncode == 0 and "35075-00001M: verified" in verify.stdout, verify.stderr
    replay = mailbot("replay", *config, "demo-out/ejcs_cid.eml", cwd=tmp_path, secret=False)
    assert replay.returncode == 0 and "verified" in replay.stdout, replay.stderr
    assert sorted(p.name for p in (tmp_path / "demo-out").glob("*.secret")) == ["mailbot.secret"]
    # The demo's confirmation is addressed to the company its notice names.
    reply = sorted((tmp_path / "demo-out" / "replies").glob("01_*.eml"))[0]
    text = message_from_bytes(reply.read_bytes(), policy=policy.default).get_content()
    assert text.startswith("〇〇建設 株式会社 ご担当者様")


# -- 4. small things at the terminal ------------------------------------------------------------
def test_every_option_and_argument_has_help_text():
    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
                if not action.help:
                    missing.append(f"{path}: {action.dest}")

    walk(build_parser(), "mailbot")
    assert missing == []


def test_a_folder_is_named_as_a_folder(tmp_path):
    for args in (["parse", str(tmp_path)], ["store", "import", str(tmp_path)]):
        done = mailbot(*args, "--store", f"sqlite:///{tmp_path / 's.db'}") if args[0] == "store" \
            else mailbot(*args)
        assert done.returncode == 2
        assert f"{tmp_path} is a directory: name the files in it" in done.stderr, args


def test_store_show_dates_each_version_and_a_second_cancel_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    issued = mailbot("store", "issue", "35075-00077M", "--kind", "契約保証", "--issuer", "〇〇市",
                     "--contractor", "〇〇建設株式会社", "--project", "〇〇線舗装工事",
                     "--pdf", str(tmp_path / "n.pdf"), "--store", url)
    assert issued.returncode == 0, issued.stderr
    assert mailbot("store", "cancel", "35075-00077M", "--store", url).returncode == 0
    again = mailbot("store", "cancel", "35075-00077M", "--store", url)
    assert again.returncode == 1
    assert "35075-00077M is already cancelled (v2); nothing recorded" in again.stderr
    show = mailbot("store", "show", "35075-00077M", "--store", url)
    dated = re.findall(r"^35075-00077M v(\d) (\w+) recorded (\d{4}-\d\d-\d\d \d\d:\d\d) JST$",
                       show.stdout, re.M)
    assert [(v, e) for v, e, _ in dated] == [("1", "new"), ("2", "cancellation")], show.stdout
    today = datetime.now(UTC).astimezone().date()
    assert all(abs((datetime.fromisoformat(d).date() - today).days) <= 1 for *_, d in dated)


def test_verify_with_an_issuer_id_but_no_config_says_the_id_needs_one(tmp_path):
    done = mailbot("verify", "35075-00001M", "Z28YUEAJ38ux", "--issuer", "maru",
                   "--store", f"sqlite:///{tmp_path / 's.db'}")
    assert done.returncode == 2
    assert "--issuer maru: an issuer ID ([issuers.maru]) needs --config FILE" in done.stderr
    assert done.stderr.startswith("mailbot verify: ")


def test_an_empty_config_fails_config_check(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("", encoding="utf-8")
    done = mailbot("config", "check", str(path))
    assert done.returncode == 2 and "[mailboxes] no mailboxes" in done.stderr


def test_two_issuers_answering_from_one_address_are_refused(tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text(answering("city", "〇〇市", 'signature = "〇〇市 契約検査課 電話 000-000-0000"\n')
                    + answering("town", "△△町", 'signature = "△△町 総務課 電話 000-000-0001"\n'),
                    encoding="utf-8")
    done = mailbot("config", "check", str(path))
    assert done.returncode == 2
    assert ("[issuers.town.reply_from] the replies of △△町 would go out as mailbot@localhost, "
            "the address of [issuers.city]") in done.stderr
    fixed = path.read_text(encoding="utf-8").replace(
        '[issuers.town]\nname = "△△町"\n',
        '[issuers.town]\nname = "△△町"\nreply_from = "keiyaku@town.example.jp"\n')
    path.write_text(fixed, encoding="utf-8")
    again = mailbot("config", "check", "--strict", str(path))
    assert again.returncode == 0, again.stderr


def test_a_signature_without_a_contact_is_a_warning(tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text(answering("city", "〇〇市", 'signature = "〇〇市 契約検査課"\n'),
                    encoding="utf-8")
    done = mailbot("config", "check", str(path))
    assert done.returncode == 0
    assert "[issuers.city.signature] has no telephone number or mail address" in done.stderr
    assert mailbot("config", "check", "--strict", str(path)).returncode == 2


# -- the outbox listing says when stored replies go out; alerts name their issuer -----------
TWO_ISSUERS = ('[store]\nurl = "{url}"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
               'from = "keiyaku@town.example.jp"\n'
               + answering("town", "△△町", 'staff = ["somu@town.example.jp"]\n')
               + answering("city", "〇〇市", 'reply_from = "keiyaku@city.example.jp"\n'
                           'staff = ["kensa@city.example.jp"]\n'))


@pytest.fixture
def two_issuers(tmp_path, sink):
    url = f"sqlite:///{tmp_path / 's.db'}"
    path = tmp_path / "mailbot.toml"
    path.write_text(TWO_ISSUERS.format(url=url, port=sink.settings.port), encoding="utf-8")
    config = load_config(path)
    store = Store.open(url, secret=TEST_SECRET)
    store.apply([GuaranteeEvent("35075-00001M", "new", "Z28YUEAJ38ux", issuer="〇〇市",
                                source="t")])
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    ledger.receive("city", notice_mail(1))
    pipeline = Pipeline(config, store, ledger, Reader())
    while pipeline.process_one():
        pass
    yield config, store, path
    store.close()


def test_outbox_list_says_when_a_stored_reply_will_be_sent(two_issuers):
    config, store, path = two_issuers
    before = datetime.now(UTC)
    listing = mailbot("outbox", "list", "--config", str(path))
    after = datetime.now(UTC)
    header, *lines = listing.stdout.splitlines()
    assert header.startswith("ID\tKIND\tSTATE\tTRIES\tWHEN\t")
    assert len(lines) == 1 and lines[0].startswith("request 1\treply\tstored\t0\t")
    # The configured window (the default one): a stored reply goes at its next opening.
    window = Outgoing(config, store).outbox.window
    expected = {window.next_open(t).astimezone(ZoneInfo(window.tz)).isoformat(timespec="minutes")
                for t in (before, after)}
    assert lines[0].split("\t")[4] in expected


def test_an_alert_for_a_failed_reply_names_the_issuer_of_its_mailbox(two_issuers, sink):
    config, store, _path = two_issuers
    outgoing = Outgoing(config, store)
    now = datetime.now(UTC)
    assert outgoing.queue(now) == 1
    sink.refuse("550 5.1.1 no such user", 1)
    opening = outgoing.outbox.window.next_open(now) + timedelta(minutes=1)
    outgoing.flush(opening)
    with store.engine.connect() as conn:
        alerts = conn.execute(select(outbox.c.to_addrs, outbox.c.raw)
                              .where(outbox.c.kind == "alert")).all()
    assert [a.to_addrs for a in alerts] == ["kensa@city.example.jp"]  # 〇〇市's staff only
    text = message_from_bytes(alerts[0].raw, policy=policy.default).get_content()
    assert "発注者：〇〇市" in text and "△△町" not in text

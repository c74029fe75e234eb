"""Hostile review of sender authentication (issue 14) as a newcomer admin and a careless
counterpart: what the admin reads from `config check`, the example configurations and the
docs, and what the contractor's staff read when an issuer signs its answers but publishes no
DMARC record, or when a forged answer left a submission waiting.

Each test is a finding: `config check` warnings named no file; `config check` printed
nothing of `[auth]`; no example configuration showed `[auth]`; the staff alert for a
DKIM-signed answer from an issuer without DMARC gave no hint of `auth = "dkim"`; the
contractor's digest listed a submission with a forged 確認しました only as 返信待ち; the
contractor-side replay showed an issuer's answer as `unauthenticated` without saying that
replay checks no sender.
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from mailbot.auth import AuthVerdict, DkimCheck, DmarcCheck
from mailbot.cli import main
from mailbot.config import load_config
from mailbot.outgoing import Outgoing

from .conftest import TEST_SECRET
from .test_contractor_auth import FORGED, OTHER, Side, reply
from .test_contractor_pipeline import TUESDAY, staff_mail

pytestmark = pytest.mark.clock

ROOT = Path(__file__).resolve().parent.parent
ISSUER = '[issuers.city]\nname = "〇〇市"\nsignature = "〇〇市 電話 000-000-0000"\n'

# Signed by the issuer's own domain, but the domain publishes no _dmarc record.
DKIM_ONLY = AuthVerdict(source="self", from_domain="city.example.jp",
                        dkim=(DkimCheck("city.example.jp", "pass", "sel", aligned=True),),
                        dmarc=DmarcCheck("city.example.jp", "none"))


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "mailbot.toml"
    path.write_text(text, encoding="utf-8")
    code = main(["config", "check", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("text, key", [
    ('[auth]\nrequire = "DMARC"\n', "auth.require"),
    ('[auth]\nauthserv_ids = ["mx city.example.jp"]\n', "auth.authserv_ids"),
    ('[auth]\nresolvers = ["dns.city.example.jp"]\n', "auth.resolvers"),
    ("[auth]\ntimeout_seconds = 0\n", "auth.timeout_seconds"),
    ("[auth]\nretries = -1\n", "auth.retries"),
    ('[issuers.city.submission]\nauth = "DKIM"\nto = "keiyaku@city.example.jp"\n',
     "issuers.city.submission.auth"),
    ('[issuers.nosuch]\nauth = "dkim"\n', "issuers.nosuch.name"),
    ('[[routes]]\nname = "r"\nissuer = "city"\nauth = "dkim"\n', "routes.r"),
])
def test_every_wrong_auth_value_names_file_and_key(tmp_path, capsys, text, key):
    code, _out, err = check(tmp_path, ISSUER + text, capsys)
    assert code == 2
    assert re.search(rf"mailbot\.toml: \[{re.escape(key)}\] \S", err), err


def test_an_auth_none_warning_names_the_file(tmp_path, capsys):
    code, out, err = check(tmp_path, '[auth]\nrequire = "none"\n' + ISSUER, capsys)
    assert code == 0 and "warning(s))" in out
    lines = err.splitlines()
    assert lines and all(line.startswith("mailbot config: warning: /") for line in lines), err
    assert any("mailbot.toml: [auth.require] is \"none\"" in line for line in lines), err


def test_config_check_prints_what_auth_it_read(tmp_path, capsys):
    text = ('[auth]\nauthserv_ids = ["mx.city.example.jp"]\nresolvers = ["192.0.2.53"]\n'
            + ISSUER + '[issuers.city.submission]\nto = "keiyaku@city.example.jp"\nauth = "dkim"\n')
    _code, out, _err = check(tmp_path, text, capsys)
    [line] = [line for line in out.splitlines() if line.startswith("  auth:")]
    assert "require dmarc" in line and "mx.city.example.jp" in line and "192.0.2.53" in line
    assert "issuers.city.submission dkim" in line
    _code, out, _err = check(tmp_path, ISSUER, capsys)
    assert "self-verified (no authserv_ids" in out and "/etc/resolv.conf" in out


@pytest.mark.parametrize("name", ["mailbot.example.toml", "contractor.example.toml",
                                  "mailbot.starter.toml"])
def test_the_example_configurations_show_auth_and_it_loads_uncommented(tmp_path, name):
    text = (ROOT / "config" / name).read_text(encoding="utf-8")
    block = re.search(r"^# \[auth\]\n((?:# \w+ = .*\n)+)", text, re.M)
    assert block, f"{name} says nothing about [auth]"
    table = "[auth]\n" + "".join(line[2:] + "\n" for line in block.group(1).splitlines())
    tomllib.loads(table)
    config = load_config(_write(tmp_path, table + ISSUER))
    assert config.auth.authserv_ids and config.auth.resolvers


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auth.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_deploy_guide_names_the_mta_and_the_key():
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "OpenDKIM" in deploy and "OpenDMARC" in deploy and "authserv_ids" in deploy
    for doc in ("deploy.md", "authentication.md"):
        # There is no `mailbot ledger` command to look a verdict up with.
        assert "ledger show" not in (ROOT / "docs" / doc).read_text(encoding="utf-8")


@pytest.fixture
def side(store, store_url, tmp_path, sink):
    return Side(store, store_url, tmp_path, sink)


def test_a_dkim_signed_answer_without_dmarc_tells_what_to_configure(side):
    decided = side.feed(reply(side, "35075-00001M 確認しました。"), DKIM_ONLY)
    assert side.state() == "sent"
    assert decided["answers"][0]["verdict"] == "unauthenticated"
    [text] = staff_mail(side.store)
    assert "DMARC を公開していない" in text
    assert '[issuers.city.submission] auth = "dkim"' in text


def test_no_configuration_hint_for_a_forgery_or_another_domain(side):
    side.feed(reply(side, "35075-00001M 確認しました。"), FORGED)
    other = reply(side, "確認しました。", sender="kensa@other.example.jp")
    side.feed(other, OTHER)
    texts = staff_mail(side.store)
    assert len(texts) == 2
    assert not any('auth = "dkim"' in text for text in texts)


def test_the_contractor_digest_flags_a_forged_answer_on_a_waiting_submission(side):
    side.feed(reply(side, "35075-00001M 確認しました。"), FORGED)
    assert side.state() == "sent"
    assert Outgoing(side.config, side.store).submitter.digest(TUESDAY + timedelta(hours=2))
    digest = staff_mail(side.store)[-1]
    assert "返信待ちの提出" in digest
    assert "発注者を名乗る返信が 1件" in digest and "状態を変えていません" in digest


def test_contractor_replay_says_it_checked_no_sender(side, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MAILBOT_SECRET", TEST_SECRET.decode())
    eml = tmp_path / "answer.eml"
    eml.write_bytes(reply(side, "35075-00001M 確認しました。"))
    config = tmp_path / "mailbot.toml"
    main(["replay", "--config", str(config), "--mailbox", "queue", str(eml)])
    out = capsys.readouterr().out
    assert "unauthenticated by thread" in out
    assert "auth    not checked by replay" in out

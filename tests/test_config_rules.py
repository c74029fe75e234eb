"""Config rules that hold for every key: relative paths are relative to the config file,
addresses are checked where they are read, and the allowed keys are the declared fields."""

from __future__ import annotations

import dataclasses

import pytest

from mailbot.config import (
    CheckConfig,
    Config,
    ConfigError,
    ContractorConfig,
    DigestConfig,
    MailboxConfig,
    RetentionConfig,
    Route,
    SmtpConfig,
    SubmissionRule,
    WindowConfig,
    load_config,
)
from mailbot.config.reader import allowed_keys, specs

from .configs import CONTRACTOR

ISSUER = '[issuers.maru]\nname = "〇〇市"\n'
IMAP = ('[[mailboxes]]\nname = "keiyaku"\nrole = "issuer"\nissuer = "maru"\nkind = "imap"\n'
        'host = "127.0.0.1"\nuser = "keiyaku"\npassword_file = "secrets/imap.pass"\n')


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The config lives in tmp_path/etc; the working directory is another folder."""
    etc, cwd = tmp_path / "etc", tmp_path / "cwd"
    (etc / "secrets").mkdir(parents=True)
    cwd.mkdir()
    (etc / "secrets" / "imap.pass").write_text("imap-secret\n")
    (etc / "secrets" / "smtp.pass").write_text("smtp-secret\n")
    monkeypatch.chdir(cwd)
    return etc


def load(folder, text):
    path = folder / "mailbot.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_every_relative_path_is_relative_to_the_config_file(elsewhere):
    (elsewhere / "files").mkdir()
    (elsewhere / "files" / "委任状.pdf").write_bytes(b"%PDF-1.4")
    config = load(elsewhere, ISSUER + IMAP
                  + '[smtp]\npassword_file = "secrets/smtp.pass"\n'
                  + '[spool]\ndir = "var/spool"\n[templates]\ndir = "my-templates"\n'
                  + '[issuers.maru.submission]\nto = "keiyaku@maru.example.jp"\n'
                  + 'attachments = ["files/委任状.pdf"]\n')
    assert config.mailbox("keiyaku").password.reveal() == "imap-secret"
    assert config.smtp.password.reveal() == "smtp-secret"
    assert config.spool_dir == elsewhere / "var" / "spool"
    assert config.template_dir == elsewhere / "my-templates"
    assert config.submissions["maru"].attachments == (elsewhere / "files" / "委任状.pdf",)


def test_an_unreadable_password_file_names_key_and_file(elsewhere):
    config = load(elsewhere, ISSUER + '[smtp]\npassword_file = "secrets/none.pass"\n')
    with pytest.raises(ConfigError) as caught:
        config.smtp.password.reveal()
    message = str(caught.value)
    assert str(elsewhere / "mailbot.toml") in message
    assert f"[smtp.password_file] cannot read {elsewhere / 'secrets/none.pass'}" in message


@pytest.mark.parametrize(("text", "where", "bad"), [
    (ISSUER + 'staff = ["jimu"]\n', "issuers.maru.staff", "'jimu'"),
    (ISSUER + 'staff = ["jimu@maru.test"]\n', "issuers.maru.staff", "'jimu@maru.test'"),
    (ISSUER + 'reply_from = "keiyaku at maru"\n', "issuers.maru.reply_from", "'keiyaku at maru'"),
    (ISSUER + '[smtp]\nfrom = "<mailbot@maru.example.jp>"\n', "smtp.from",
     "'<mailbot@maru.example.jp>'"),
    (ISSUER + '[[mailboxes]]\nname = "l"\nrole = "issuer"\nissuer = "maru"\nkind = "lmtp"\n'
     'listen = "127.0.0.1:0"\naddresses = ["keiyaku@maru.example.jp", "keiyaku"]\n',
     "mailboxes.l.addresses", "'keiyaku'"),
    (CONTRACTOR.replace('staff = ["jimu@maru.example.jp"]', 'staff = ["jimu@"]'),
     "contractor.staff", "'jimu@'"),
    (CONTRACTOR.replace('from = "denshi@maru.example.jp"', 'from = "denshi@maru example.jp"'),
     "contractor.from", "'denshi@maru example.jp'"),
    (ISSUER + '[issuers.maru.submission]\nto_by_kind = { "契約保証" = "keiyaku@@maru.example.jp" }\n',
     "issuers.maru.submission.to_by_kind.契約保証", "'keiyaku@@maru.example.jp'"),
])
def test_bad_addresses_are_refused_naming_file_key_and_value(tmp_path, text, where, bad):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert str(tmp_path / "mailbot.toml") in message
    assert f"[{where}] {bad} is not an e-mail address" in message


def test_our_own_sender_may_be_a_host_without_a_dot(tmp_path):
    config = load(tmp_path, ISSUER + 'reply_from = "keiyaku@localhost"\nstaff = ["Jimu@Maru.Example.JP"]\n'
                  '[smtp]\nfrom = "mailbot@localhost"\n')
    assert config.smtp.from_addr == "mailbot@localhost"
    assert config.issuer("maru").reply_from == "keiyaku@localhost"
    assert config.issuer("maru").staff == ("Jimu@Maru.Example.JP",)  # checked, not rewritten
    assert load(tmp_path, ISSUER).smtp.from_addr == "mailbot@localhost"


@pytest.mark.parametrize("cls", [MailboxConfig, Route, SmtpConfig, WindowConfig, DigestConfig,
                                 ContractorConfig, SubmissionRule, CheckConfig, RetentionConfig])
def test_the_allowed_keys_are_the_declared_fields(cls):
    keys = allowed_keys(specs(cls))
    assert len(keys) == len(set(keys))
    unread = {f.name for f in dataclasses.fields(cls)} - {s.name for s in specs(cls)}
    assert not unread  # every field of a section is read from the file


def test_the_top_level_keys_come_from_the_config_fields():
    assert allowed_keys(specs(Config)) == (
        "store", "spool", "issuers", "mailboxes", "routes", "smtp", "send_window", "digest",
        "metrics", "web", "templates", "contractor", "projects", "check", "retention", "cluster",
        "auth")

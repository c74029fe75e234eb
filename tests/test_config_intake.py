"""Mailboxes and routes in the config: errors name file and key; passwords never in the file."""

from __future__ import annotations

import pytest

from mailbot.config import ConfigError, load_config

ISSUER = '[issuers.maru]\nname = "〇〇市"\n'
IMAP = ('[[mailboxes]]\nname = "keiyaku"\nrole = "issuer"\nissuer = "maru"\nkind = "imap"\n'
        'host = "127.0.0.1"\nuser = "keiyaku"\n')


def load(tmp_path, text):
    path = tmp_path / "mailbot.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_imap_mailbox_with_password_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("KEIYAKU_PASSWORD", "secret")
    config = load(tmp_path, ISSUER + IMAP + 'password_env = "KEIYAKU_PASSWORD"\ntls = "none"\n')
    mailbox = config.mailbox("keiyaku")
    assert (mailbox.password.reveal(), mailbox.port, mailbox.done_folder) == ("secret", 143,
                                                                          "電子保証/処理済")
    assert config.spool_dir == tmp_path / "spool"


def test_password_from_a_file(tmp_path):
    (tmp_path / "pw").write_text("from-file\n")
    config = load(tmp_path, ISSUER + IMAP + f'password_file = "{tmp_path / "pw"}"\n')
    assert config.mailbox("keiyaku").password.reveal() == "from-file"


def test_an_unset_password_variable_is_an_error_only_when_the_password_is_needed(tmp_path):
    """Loading names where the password is; reading it (a connection, `mailbot run`) names
    the file, the key and the variable."""
    config = load(tmp_path, ISSUER + IMAP + 'password_env = "NO_SUCH_VARIABLE_X"\n')
    secret = config.mailbox("keiyaku").password
    assert "NO_SUCH_VARIABLE_X" in repr(secret)
    for attempt in (secret.reveal, config.reveal_secrets):
        with pytest.raises(ConfigError) as error:
            attempt()
        assert str(error.value) == (f"{tmp_path / 'mailbot.toml'}: [mailboxes.keiyaku."
                                    "password_env] environment variable NO_SUCH_VARIABLE_X "
                                    "is not set")
    assert secret.problem() == str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ISSUER + IMAP + 'password = "hunter2"\n',
         "[mailboxes.keiyaku.password] passwords never go in the file"),
        (ISSUER + IMAP.replace('issuer = "maru"', 'issuer = "nobody"') + 'password_env = "X"\n',
         "[mailboxes.keiyaku.issuer] no [issuers.nobody] table"),
        (ISSUER + IMAP.replace('"imap"', '"pop3"'), "must be one of imap, smtp, lmtp"),
        (ISSUER + '[[mailboxes]]\nname = "l"\nrole = "contractor"\nkind = "lmtp"\nlisten = "x"\n',
         "[mailboxes.l.listen] must be HOST:PORT"),
        (ISSUER + '[[mailboxes]]\nname = "l"\nrole = "contractor"\nkind = "lmtp"\n'
         'listen = "127.0.0.1:70000"\n', "[mailboxes.l.listen] must be HOST:PORT"),
        (ISSUER + IMAP + 'password_env = "HOME"\nkeyword = "bad keyword"\n',
         "[mailboxes.keiyaku.keyword] 'bad keyword' is not a valid IMAP keyword"),
        (ISSUER + '[[routes]]\nname = "r"\nsubject = "("\n',
         "[routes.r.subject] not a valid regular expression"),
        (ISSUER + '[[routes]]\nname = "r"\nmailbox = "nope"\n', "[routes.r.mailbox] no mailbox"),
        (ISSUER + '[[routes]]\nname = "r"\ncolour = "red"\n', "[routes.r] unknown key 'colour'"),
    ],
)
def test_config_errors(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert str(tmp_path / "mailbot.toml") in str(error.value)
    assert message in str(error.value)

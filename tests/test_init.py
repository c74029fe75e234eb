"""`mailbot init DIR`: a starter configuration load_config accepts, a 0600 secret the store
finds, no file ever overwritten, and a word on what to edit next."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mailbot.cli import main
from mailbot.config import load_config
from mailbot.errors import UsageError
from mailbot.store import Store
from mailbot.store.secret import key_hash, load_secret


@pytest.fixture(autouse=True)
def _no_secret_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAILBOT_SECRET", "MAILBOT_SECRET_FILE", "CREDENTIALS_DIRECTORY",
                 "MAILBOT_STORE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_init_writes_a_valid_config_and_a_private_secret(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "etc" / "mailbot"
    assert main(["init", str(folder)]) == 0
    out = capsys.readouterr().out
    config_file, secret_file = folder / "mailbot.toml", folder / "mailbot.secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text(encoding="utf-8").strip()
    assert len(secret) >= 32

    config = load_config(config_file)
    assert config.store_url == f"sqlite:///{folder / 'mailbot.db'}"
    assert config.spool_dir == folder / "spool"
    assert [m.kind for m in config.mailboxes] == ["lmtp"] and "main" in config.issuers
    text = config_file.read_text(encoding="utf-8")
    assert "EDIT" in text and text.count("\n#") >= 5 and secret not in text

    # The store finds the secret beside its database: no second secret is invented.
    assert config.store_url is not None
    store = Store.open(config.store_url)
    try:
        assert store.hash_key("AB12-CD34") == key_hash(secret.encode(), "AB12-CD34")
    finally:
        store.close()
    assert sorted(p.name for p in folder.iterdir()) == [
        "mailbot.db", "mailbot.secret", "mailbot.toml", *(["mailbot.db-shm", "mailbot.db-wal"]
                                                          if (folder / "mailbot.db-wal").exists()
                                                          else [])]
    assert f"Edit {config_file}" in out and f"mailbot config check {config_file}" in out
    assert "mailbot.example.toml" in out and secret not in out


@pytest.mark.parametrize("existing", ["mailbot.toml", "mailbot.secret"])
def test_init_never_overwrites(tmp_path: Path, existing: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / existing).write_text("mine\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / existing} already exists" in err
    assert (tmp_path / existing).read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]  # nothing half-written


def test_init_with_a_state_dir_as_under_systemd(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    etc, state = tmp_path / "etc", tmp_path / "var-lib-mailbot"
    assert main(["init", str(etc), "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    config = load_config(etc / "mailbot.toml")
    assert config.store_url == f"sqlite:///{state / 'mailbot.db'}"
    assert config.spool_dir == state / "spool"
    assert f"LoadCredential=mailbot.secret:{etc / 'mailbot.secret'}" in out
    assert f"MAILBOT_SECRET_FILE={etc / 'mailbot.secret'}" in out

    # systemd's LoadCredential copies the secret into $CREDENTIALS_DIRECTORY: found there,
    # and no other secret is created beside the database.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    os.link(etc / "mailbot.secret", credentials / "mailbot.secret")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    state.mkdir()
    assert config.store_url is not None
    assert load_secret(config.store_url) == (etc / "mailbot.secret").read_bytes().strip()
    assert not (state / "mailbot.secret").exists()


def test_credentials_directory_without_our_credential_falls_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "smtp.pass").write_text("not the secret\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    with pytest.raises(UsageError, match="LoadCredential"):
        load_secret("postgresql+psycopg://mailbot@db.example.jp/mailbot")
    (credentials / "mailbot.secret").write_text("s" * 40 + "\n", encoding="utf-8")
    assert load_secret("postgresql+psycopg://mailbot@db.example.jp/mailbot") == b"s" * 40

"""`mailbot store …`, `mailbot verify` and `mailbot config check` as a clerk runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mailbot.store import Store

from .conftest import TEST_SECRET

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks

HEADER = "保証契約番号,認証キー,商品名,発注者名,請負契約者,工事名,請負金額,保証金額,保証期限,対象\n"
ROWS = (
    "35075-00001M,Z28YUEAJ38ux,前払金保証,〇〇市,〇〇建設 株式会社,〇〇浄水場△△修繕工事,"
    "\"50,000,000円\",\"20,000,000円\",令和9年3月31日,新規\n"
    "35075-00002M,Qw2Er4Ty6Ui0,契約保証,〇〇市,〇〇建設 株式会社,〇〇浄水場△△修繕工事,"
    "\"50,000,000円\",５，０００，０００円,R9.3.31,新規\n"
    "35075-00001M,aB3dEf7hJk9m,前払金保証,,,,,\"19,000,000\",,変更\n"
)


def mailbot(*args, env_secret=True, cwd=None):
    import os

    env = dict(os.environ)
    if env_secret:
        env["MAILBOT_SECRET"] = TEST_SECRET.decode()
    return subprocess.run([sys.executable, "-m", "mailbot.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes((HEADER + ROWS).encode("cp932"))  # as Excel writes it
    return path


def test_import_reimport_and_verify(store_url, csv_file):
    run = mailbot("store", "import", str(csv_file), "--store", store_url)
    assert run.returncode == 0, run.stderr
    assert "3 events imported, 0 already in the store" in run.stdout
    again = mailbot("store", "import", str(csv_file), "--store", store_url)
    assert "0 events imported, 3 already in the store" in again.stdout
    verified = mailbot("verify", "35075-00001M", "aB3dEf7hJk9m", "--issuer", "〇〇市", "--json",
                       "--store", store_url, "--on", "2026-08-01")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["outcomes"] == ["verified"]
    old = mailbot("verify", "35075-00001M", "Z28YUEAJ38ux", "--json", "--store", store_url,
                  "--on", "2026-08-01")  # before the 保証期限: only the key is old
    assert old.returncode == 1 and json.loads(old.stdout)["outcomes"] == ["superseded"]
    show = mailbot("store", "show", "35075-00001M", "--store", store_url)
    assert "v2 amendment" in show.stdout and "19000000" in show.stdout
    assert "aB3dEf7hJk9m" not in show.stdout and "Z28YUEAJ38ux" not in show.stdout


def test_a_bad_file_names_line_and_column_and_imports_nothing(store_url, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + ROWS.replace("R9.3.31", "R9.13.31") + "35075-ABCDE,,契約保証,,,,,,,新規\n",
                   encoding="utf-8")
    run = mailbot("store", "import", str(bad), "--store", store_url)
    assert run.returncode == 1
    assert f"{bad}: line 3, column 保証期限:" in run.stderr
    assert f"{bad}: line 5, column 保証契約番号:" in run.stderr
    assert "nothing imported" in run.stderr
    opened = Store.open(store_url, secret=TEST_SECRET)
    assert opened.count() == 0
    opened.close()


def test_a_store_conflict_imports_nothing(store_url, tmp_path):
    conflict = tmp_path / "conflict.csv"
    conflict.write_text(HEADER + ROWS + ROWS.splitlines()[1].replace("Qw2Er4Ty6Ui0", "Qw2Er4Ty6Ui9")
                        + "\n", encoding="utf-8")
    run = mailbot("store", "import", str(conflict), "--store", store_url)
    assert run.returncode == 1
    assert f"{conflict}:5: guarantee 35075-00002M already exists" in run.stderr
    opened = Store.open(store_url, secret=TEST_SECRET)
    assert opened.count() == 0
    opened.close()


def test_issue_prints_the_key_once_and_writes_a_readable_notice(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    pdf = tmp_path / "n.pdf"
    run = mailbot("store", "issue", "35075-00077M", "--kind", "契約保証", "--issuer", "〇〇市",
                  "--contractor", "〇〇建設 株式会社", "--project", "〇〇橋補修工事",
                  "--contract-amount", "30,000,000円", "--amount", "3000000", "--pdf", str(pdf),
                  "--store", url, env_secret=False, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    key = run.stdout.split("認証キー ")[1].split()[0]
    assert len(key) == 12 and key.isalnum()
    assert "created a new key-hashing secret" in run.stderr
    parsed = json.loads(mailbot("parse", "--json", str(pdf)).stdout)
    assert parsed["notices"][0]["auth_key"] == key
    verify = mailbot("verify", "35075-00077M", key, "--kind", "契約保証", "--store", url,
                     env_secret=False, cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert key not in (tmp_path / "s.db").read_bytes().decode("latin-1")
    amend = mailbot("store", "amend", "35075-00077M", "--new-key", "--pdf", str(tmp_path / "m.pdf"),
                    "--store", url, env_secret=False, cwd=tmp_path)
    new_key = amend.stdout.split("認証キー ")[1].split()[0]
    assert new_key != key
    cancel = mailbot("store", "cancel", "35075-00077M", "--store", url, env_secret=False,
                     cwd=tmp_path)
    assert cancel.returncode == 0
    final = mailbot("verify", "35075-00077M", new_key, "--json", "--store", url, env_secret=False,
                    cwd=tmp_path)
    assert json.loads(final.stdout)["outcomes"] == ["cancelled"]


def test_usage_errors_exit_2_with_one_sentence(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    bad_number = mailbot("verify", "12-3", "Z28YUEAJ38ux", "--store", url)
    assert bad_number.returncode == 2 and "NUMBER" in bad_number.stderr
    bad_key = mailbot("verify", "35075-00001M", "short!", "--store", url)
    assert bad_key.returncode == 2 and "short!" not in bad_key.stderr
    no_secret = mailbot("verify", "35075-00001M", "Z28YUEAJ38ux", "--store",
                        "postgresql+psycopg://mailbot@127.0.0.1:1/x", env_secret=False)
    assert no_secret.returncode == 2 and "MAILBOT_SECRET" in no_secret.stderr


def test_config_check_and_issuer_policy_from_config(tmp_path, csv_file):
    config = tmp_path / "mailbot.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "c.db"}"\n\n'
        '[issuers.maru]\nname = "〇〇市"\naliases = ["〇〇市長"]\n'
        'awarded_on_or_after = 2026-07-01\n[issuers.maru.amounts]\nadvance_max = "3/10"\n',
        encoding="utf-8",
    )
    check = mailbot("config", "check", str(config))
    assert check.returncode == 0 and "issuer maru: 〇〇市 (aliases: 〇〇市長)" in check.stdout
    assert mailbot("store", "import", str(csv_file), "--config", str(config)).returncode == 0
    strict = mailbot("verify", "35075-00002M", "Qw2Er4Ty6Ui0", "--issuer", "maru", "--json",
                     "--config", str(config), "--on", "2026-08-01")
    assert json.loads(strict.stdout)["outcomes"] == ["verified"]
    over = mailbot("verify", "35075-00001M", "aB3dEf7hJk9m", "--issuer", "〇〇市長", "--json",
                   "--config", str(config), "--on", "2026-08-01")
    assert json.loads(over.stdout)["outcomes"] == ["amount_rule"]  # 19/50 > 3/10


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[issuers.a]\nname = "x"\ncolour = 1\n', "[issuers.a] unknown key 'colour'"),
        ('[issuers.a]\nname = "x"\n[issuers.a.amounts]\nadvance_max = "9/5"\n',
         "[issuers.a.amounts.advance_max] must be between 0 and 1"),
        ('[issuers.a]\nname = "x"\nchain = ["no_such_rule"]\n', "[issuers.a.chain] unknown"),
        ('[store]\nurl = 5\n', "[store.url] must be a non-empty string"),
        ('[store\n', "line 1"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, text, where):
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    run = mailbot("config", "check", str(config))
    assert run.returncode == 2
    assert str(config) in run.stderr and where in run.stderr


def test_the_example_config_is_valid(monkeypatch):
    from pathlib import Path

    from mailbot.config import load_config

    monkeypatch.setenv("MAILBOT_KEIYAKU_PASSWORD", "from-the-environment")
    monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", "relay-password")
    config = load_config(Path(__file__).parents[1] / "config" / "mailbot.example.toml")
    assert config.issuer("kwsa").awarded_on_or_after is not None
    assert config.issuer("〇〇県内広域水道企業団 企業長").name == "〇〇県内広域水道企業団"
    assert config.mailbox("keiyaku").password.reveal() == "from-the-environment"
    assert [r.name for r in config.routes][-1] == "contract guarantees"


def test_the_contractor_example_config_is_valid(monkeypatch):
    from pathlib import Path

    from mailbot.config import load_config

    monkeypatch.setenv("MAILBOT_QUEUE_PASSWORD", "from-the-environment")
    monkeypatch.setenv("MAILBOT_SMTP_PASSWORD", "relay-password")
    config = load_config(Path(__file__).parents[1] / "config" / "contractor.example.toml")
    assert config.contractor is not None and config.contractor.staff
    city = config.submissions["city"]
    assert city.address_for("前払金保証") == "kaikei@city.example.jp"
    assert city.address_for("契約保証") == "keiyaku@city.example.jp"
    assert city.window is not None and config.submissions["water"].charset == "iso-2022-jp"
    assert [p.issuer for p in config.projects] == ["water", None]
    assert config.mailbox("queue").role == "contractor"

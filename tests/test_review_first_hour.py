"""A hostile review of the first hour (issue 11): what a sender can put in the addressee
line, replies and alerts of issuers that share a name or are reached by a route, passwords
in what `config check` prints, and the clerk's errors (an unreachable store, odd row ids)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

import pytest
from sqlalchemy import select

from mailbot.config import load_config
from mailbot.daemon import Pipeline
from mailbot.ledger import Ledger, Spool
from mailbot.outgoing import Outgoing
from mailbot.pipeline.decide import addressee
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import outbox, reply_requests
from parsers import Reader

from .configs import imap_issuer, lmtp_mailbox, store_and_relay
from .conftest import TEST_SECRET
from .servers import free_port
from .test_first_hour import mailbot

pytestmark = pytest.mark.clock  # scripts/test runs these again under other clocks


def body_mail(contractor: str, number: str = "35075-00001M", key: str = "Z28YUEAJ38ux",
              sender: str = "tanto@maru-kensetsu.example.jp") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "keiyaku@city.example.jp"
    message["Subject"] = "【電子保証】〇〇浄水場△△修繕工事"
    message["Message-ID"] = make_msgid(domain="maru-kensetsu.example.jp")
    message.set_content(f"保証契約番号：{number}\n認証キー：{key}\n受注者：{contractor}\n")
    return message.as_bytes()


# -- the addressee line: a sender's text, read by the real reader ------------------------------
@pytest.mark.parametrize(("written", "expected"), [
    ("〇〇建設株式会社", "〇〇建設株式会社"),
    ("〇〇・△△特定建設工事共同企業体", "〇〇・△△特定建設工事共同企業体"),  # a JV
    ("〇〇建設株式会社 様", "〇〇建設株式会社"),  # 「様 ご担当者様」 would say 様 twice
    ("〇〇建設株式会社御中", "〇〇建設株式会社"),
    ("〇〇建設株式会社 ご担当者様", "〇〇建設株式会社"),
    ("〇〇建設株式会社\u202e社会式株", None),  # a bidi override turns the line around
    ("〇〇建設\u2066株式会社", None),  # a bidi isolate
    ("\ufeff〇〇建設株式会社", None),  # a zero-width no-break space
    ("〇〇建設株式会社\u00ad", None),  # a soft hyphen
    ("至急 https://evil.example.jp/login で再登録", None),  # a link at the top of a reply
    ("To: kaikei@city.example.jp", None),  # header-like text, an address
])
def test_the_addressee_is_a_company_name_or_nothing(written, expected):
    parsed = Reader().read_bytes(body_mail(written), "m.eml")
    assert [n.guarantee_number for n in parsed.notices] == ["35075-00001M"]
    assert addressee(parsed) == expected


@pytest.fixture
def city(tmp_path, sink):
    """〇〇市 with one LMTP mailbox; 35075-00001M registered for 〇〇建設株式会社."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    path = tmp_path / "mailbot.toml"
    path.write_text(store_and_relay(url, sink.settings.port)
                    + '[issuers.city]\nname = "〇〇市"\nstaff = ["kensa@city.example.jp"]\n'
                    + lmtp_mailbox("city"), encoding="utf-8")
    store = Store.open(url, secret=TEST_SECRET)
    store.apply([GuaranteeEvent("35075-00001M", "new", "Z28YUEAJ38ux", issuer="〇〇市",
                                contractor="〇〇建設株式会社", source="t")])
    yield load_config(path), store, tmp_path
    store.close()


def _decide(config, store, tmp_path, mailbox: str, raw: bytes) -> None:  # noqa: ANN001
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    ledger.receive(mailbox, raw)
    pipeline = Pipeline(config, store, ledger, Reader())
    while pipeline.process_one():
        pass


def test_a_reply_is_not_addressed_to_a_company_that_is_not_the_guarantees(city):
    """The notice says △△工業, the store says 〇〇建設: the discrepancy reply must not greet
    △△工業 as if it were the contractor (nor confirm a name the issuer just refused)."""
    config, store, tmp_path = city
    _decide(config, store, tmp_path, "city", body_mail("△△工業株式会社"))
    with store.engine.connect() as conn:
        (stored,) = conn.execute(select(reply_requests.c.context)).scalars().all()
    context = json.loads(stored) if isinstance(stored, str) else stored
    assert "contractor_mismatch" in context["notices"][0]["outcomes"]
    assert context["addressee"] is None
    outgoing = Outgoing(config, store)
    assert outgoing.queue(datetime.now(UTC)) == 1
    with store.engine.connect() as conn:
        raw = conn.execute(select(outbox.c.raw).where(outbox.c.kind == "reply")).scalar_one()
    text = message_from_bytes(raw, policy=policy.default).get_content()
    assert text.startswith("ご担当者様") and "△△工業株式会社 ご担当者様" not in text


# -- two desks of one city: the same name, each its own address --------------------------------
def test_two_issuers_sharing_a_name_answer_and_alert_each_as_itself(tmp_path, sink):
    url = f"sqlite:///{tmp_path / 's.db'}"
    path = tmp_path / "mailbot.toml"
    path.write_text(store_and_relay(url, sink.settings.port) + '''[issuers.kensa]
name = "〇〇市"
reply_from = "keiyaku@city.example.jp"
signature = "〇〇市 契約検査課 電話 000-000-0000"
staff = ["kensa@city.example.jp"]
[issuers.suido]
name = "〇〇市"
reply_from = "suido@city.example.jp"
signature = "〇〇市 水道局 経理課 電話 000-000-0001"
staff = ["keiri@city.example.jp"]
[[mailboxes]]
name = "kensa"
role = "issuer"
issuer = "kensa"
kind = "lmtp"
listen = "127.0.0.1:0"
[[mailboxes]]
name = "suido"
role = "issuer"
issuer = "suido"
kind = "lmtp"
listen = "127.0.0.1:0"
''', encoding="utf-8")
    assert mailbot("config", "check", "--strict", str(path)).returncode == 0
    config = load_config(path)
    store = Store.open(url, secret=TEST_SECRET)
    try:
        store.apply([GuaranteeEvent("35075-00001M", "new", "Z28YUEAJ38ux", issuer="〇〇市",
                                    source="t")])
        _decide(config, store, tmp_path, "suido", body_mail("〇〇建設株式会社"))
        outgoing = Outgoing(config, store)
        now = datetime.now(UTC)
        assert outgoing.queue(now) == 1
        with store.engine.connect() as conn:
            raw = conn.execute(select(outbox.c.raw).where(outbox.c.kind == "reply")).scalar_one()
        reply = message_from_bytes(raw, policy=policy.default)
        assert parseaddr(str(reply["From"]))[1] == "suido@city.example.jp"
        assert "水道局" in reply.get_content() and "契約検査課" not in reply.get_content()
        # Its failure goes to the 水道局's staff, not the 契約検査課's.
        sink.refuse("550 5.1.1 no such user", 1)
        outgoing.flush(outgoing.outbox.window.next_open(now) + timedelta(minutes=1))
        with store.engine.connect() as conn:
            alerts = conn.execute(select(outbox.c.to_addrs)
                                  .where(outbox.c.kind == "alert")).scalars().all()
        assert alerts == ["keiri@city.example.jp"]
    finally:
        store.close()


# -- config check: issuers reached by a route --------------------------------------------------
CITY_AND_TOWN = '''[smtp]
from = "keiyaku@city.example.jp"
[issuers.city]
name = "〇〇市"
reply_from = "keiyaku@city.example.jp"
signature = "〇〇市 契約検査課 電話 000-000-0000"
[issuers.town]
name = "△△町"
reply_from = "keiyaku@town.example.jp"
signature = "△△町 総務課 電話 000-000-0001"
[issuers.water]
name = "〇〇市水道局"
signature = "〇〇市水道局 電話 000-000-0002"
[[mailboxes]]
name = "city"
role = "issuer"
issuer = "city"
kind = "lmtp"
listen = "127.0.0.1:0"
[[mailboxes]]
name = "town"
role = "issuer"
issuer = "town"
kind = "lmtp"
listen = "127.0.0.1:0"
'''


def test_an_issuer_reached_only_by_a_route_needs_its_own_address(tmp_path):
    """〇〇市's mailbox routes 水道 mail to the 水道局, which has no reply_from: its replies
    would go out as 〇〇市's address."""
    path = tmp_path / "mailbot.toml"
    path.write_text(CITY_AND_TOWN + '''[[routes]]
name = "water"
mailbox = "city"
subject = "水道"
issuer = "water"
''', encoding="utf-8")
    done = mailbot("config", "check", str(path))
    assert done.returncode == 2
    assert ("[issuers.water.reply_from] the replies of 〇〇市水道局 would go out as "
            "keiyaku@city.example.jp, the address of [issuers.city]") in done.stderr


def test_a_route_for_every_mailbox_cannot_take_another_issuers_mail(tmp_path):
    """A route with an issuer (or notify) and no mailbox matches △△町's mail too: a sender
    who writes 「水道」 in the subject is answered as 〇〇市水道局 and listed in its digest."""
    path = tmp_path / "mailbot.toml"
    route = '''[[routes]]
name = "water"
subject = "水道"
issuer = "water"
notify = ["suido@city.example.jp"]
'''
    path.write_text(CITY_AND_TOWN.replace('[issuers.water]\n', '[issuers.water]\n'
                                          'reply_from = "suido@city.example.jp"\n') + route,
                    encoding="utf-8")
    done = mailbot("config", "check", str(path))
    assert done.returncode == 2
    assert "[routes.water.mailbox] not set: the route sets issuer water" in done.stderr
    path.write_text(path.read_text(encoding="utf-8").replace(
        'name = "water"\n', 'name = "water"\nmailbox = "city"\n'), encoding="utf-8")
    fixed = mailbot("config", "check", "--strict", str(path))
    assert fixed.returncode == 0, fixed.stderr


# -- passwords: the store URL's --------------------------------------------------------------
def test_neither_config_check_nor_repr_shows_the_store_password(tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text('[store]\nurl = "postgresql+psycopg://mailbot:Hunter2-pass@db.example.jp/mb"\n'
                    '[issuers.city]\nname = "〇〇市"\n', encoding="utf-8")
    done = mailbot("config", "check", str(path))
    assert done.returncode == 0, done.stderr
    assert "store: postgresql+psycopg://mailbot:***@db.example.jp/mb" in done.stdout
    assert "Hunter2" not in done.stdout + done.stderr
    assert "Hunter2" not in repr(load_config(path))


# -- the clerk's errors ------------------------------------------------------------------------
def test_an_unreachable_store_is_one_sentence_and_exit_2(tmp_path):
    """Not a 100-line traceback with exit 1 (which `verify` uses for "not verified")."""
    path = tmp_path / "mailbot.toml"
    url = f"postgresql+psycopg://mailbot:Hunter2-pass@127.0.0.1:{free_port()}/mb"
    path.write_text(f'[store]\nurl = "{url}"\n[issuers.city]\nname = "〇〇市"\n',
                    encoding="utf-8")
    for command in (["status"], ["verify", "35075-00001M", "Z28YUEAJ38ux"], ["outbox", "list"]):
        done = mailbot(*command, "--config", str(path))
        assert done.returncode == 2, (command, done.stderr[-400:])
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"mailbot {command[0]}: cannot open the store "
                               "postgresql+psycopg://mailbot:***@127.0.0.1:"), line
        assert "Hunter2" not in line


def test_odd_row_ids_are_usage_errors_and_missing_rows_name_the_command(tmp_path):
    path = tmp_path / "mailbot.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[issuers.city]\n'
                    'name = "〇〇市"\n', encoding="utf-8")
    config = ["--config", str(path)]
    for argv in (["outbox", "cancel", "99999999999999999999"], ["outbox", "retry", "0"],
                 ["submissions", "show", "-1"], ["quarantine", "show", "9" * 30]):
        done = mailbot(*argv, *config)
        assert done.returncode == 2 and "is not a row id" in done.stderr, (argv, done.stderr)
        assert "Traceback" not in done.stderr
    for argv, said in ((["outbox", "retry", "999"], "mailbot outbox: no outbox row 999"),
                       (["outbox", "cancel", "--request", "999"], "mailbot outbox: reply request 999"),
                       (["submissions", "show", "999"], "mailbot submissions: no submission 999"),
                       (["quarantine", "retry", "999"], "mailbot quarantine: ledger entry 999")):
        done = mailbot(*argv, *config)
        assert done.returncode == 1 and done.stderr.startswith(said), (argv, done.stderr)


# -- the demo's config and a secret in the shell -----------------------------------------------
def test_a_secret_in_the_environment_does_not_turn_the_demos_valid_key_wrong(tmp_path):
    """README: run the demo, then (next section) `export MAILBOT_SECRET_FILE=…` and verify with
    --config demo-out/mailbot.toml. The valid key must verify, or the command must say that
    the secret is not the store's (exit 2) — never answer `key_mismatch`."""
    demo = mailbot("demo", "--out", "demo-out", cwd=tmp_path, secret=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    verify = mailbot("verify", "35075-00001M", "Z28YUEAJ38ux", "--config",
                     "demo-out/mailbot.toml", cwd=tmp_path)  # with MAILBOT_SECRET set
    assert verify.returncode in (0, 2), verify.stdout
    assert "key_mismatch" not in verify.stdout
    if verify.returncode == 2:
        assert "secret" in verify.stderr


def test_a_mistyped_issuer_id_with_a_config_is_named_not_answered_issuer_mismatch(city):
    """`verify --issuer kwsa --config FILE` (the README's ID) where FILE has only `city`:
    not a valid guarantee reported as another issuer's."""
    _config, _store, tmp_path = city
    config = ["--config", str(tmp_path / "mailbot.toml")]
    typo = mailbot("verify", "35075-00001M", "Z28YUEAJ38ux", "--issuer", "kwsa", *config)
    assert typo.returncode == 2 and "issuer_mismatch" not in typo.stdout
    assert typo.stderr.startswith("mailbot verify: --issuer kwsa: no [issuers.kwsa] in ")
    assert "(its issuers: city)" in typo.stderr
    for issuer in ("city", "〇〇市"):
        right = mailbot("verify", "35075-00001M", "Z28YUEAJ38ux", "--issuer", issuer, *config)
        assert right.returncode == 0 and "35075-00001M: verified" in right.stdout, right.stderr


def test_a_closed_pipe_stops_a_listing_without_a_traceback(city):
    """`mailbot verify … | head -0`: the reader is gone before the first line is written."""
    _config, _store, tmp_path = city
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe fails (EPIPE), whatever the timing
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env["MAILBOT_SECRET"] = TEST_SECRET.decode()
    try:
        done = subprocess.run([sys.executable, "-m", "mailbot.cli", "verify", "35075-00001M",
                               "Z28YUEAJ38ux", "--config", str(tmp_path / "mailbot.toml")],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=180,
                              env=env)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done.stderr[-400:]


def test_an_issuer_without_staff_is_warned_that_its_alerts_go_to_another_issuers(tmp_path):
    """Replier.staff_alert sends the alert of an issuer with no staff to everybody's staff:
    〇〇市's contractor's address and subject would reach △△町's staff."""
    path = tmp_path / "mailbot.toml"
    path.write_text(CITY_AND_TOWN.replace('[issuers.town]\n', '[issuers.town]\n'
                                          'staff = ["somu@town.example.jp"]\n'),
                    encoding="utf-8")
    done = mailbot("config", "check", str(path))
    assert done.returncode == 0, done.stderr
    assert ("[issuers.city.staff] not set: alerts about 〇〇市's mail (the contractor's address "
            "and subject) go to the staff of [issuers.town]") in done.stderr
    assert mailbot("config", "check", "--strict", str(path)).returncode == 2


def test_an_empty_mail_password_is_refused_like_an_unset_one(tmp_path):
    """`MAILBOT_X_PASSWORD= mailbot run` or an empty password file: not an IMAP login with
    an empty password minutes later, but a refusal at start naming file and key."""
    empty = tmp_path / "keiyaku.pass"
    empty.write_text("\n", encoding="utf-8")
    path = tmp_path / "mailbot.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[smtp]\n'
                    'from = "keiyaku@city.example.jp"\nuser = "mailbot"\n'
                    'password_file = "keiyaku.pass"\n'
                    + imap_issuer("MAILBOT_TEST_EMPTY_PASSWORD",
                                  'signature = "〇〇市 契約検査課 電話 000-000-0000"\n'),
                    encoding="utf-8")
    env = dict(os.environ, MAILBOT_TEST_EMPTY_PASSWORD="", MAILBOT_SECRET=TEST_SECRET.decode())
    run = subprocess.run([sys.executable, "-m", "mailbot.cli", "run", "--config", str(path)],
                         capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 2, run.stderr[-400:]
    assert (f"{path}: [mailboxes.keiyaku.password_env] environment variable "
            "MAILBOT_TEST_EMPTY_PASSWORD is empty") in run.stderr
    check = subprocess.run([sys.executable, "-m", "mailbot.cli", "config", "check", "--strict",
                            str(path)], capture_output=True, text=True, timeout=180, env=env)
    assert check.returncode == 2
    assert f"[smtp.password_file] {empty} is empty" in check.stderr

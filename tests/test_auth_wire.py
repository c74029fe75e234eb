"""The authentication verdict in the daemon: a DNS `temperror` defers a mail, never passes it.

A mail whose checks could not be made (the sender's DNS did not answer) goes back to the
ledger with `not_before` = the injected clock + `[auth] retry_seconds`, counted as a
deferral and not as an attempt (the third attempt quarantines; DNS is not our crash). When
DNS answers at the next try the mail is decided with the real verdict; after `[auth]
retries` deferrals it is decided with its temporary verdict, and the decision record says
so. `mailbot status` shows the waiting row, the metrics count deferrals and verdicts, and
the daemon claims the row when its time comes without new mail.

Most tests drive the defer path with `FlakyDns`, a test-only `Authenticator` subclass that
returns the verdicts the real one gives a DKIM-signed mail while DNS is silent
(`dkim=temperror`) and once it answers (`dmarc=pass`): it lets a test step the clock over
many deferrals without waiting for DNS timeouts. The last test runs the real
`Authenticator` against a silent DNS server on loopback (tests/dns_server.py) with a mail
signed by dkimpy: nothing mocked.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import MetaData, create_engine, inspect, select, text

from mailbot.auth import Authenticator, AuthVerdict, DkimCheck, DmarcCheck
from mailbot.cli import main
from mailbot.config import Config, load_config
from mailbot.daemon import Daemon, Pipeline
from mailbot.ledger import MAX_ATTEMPTS, Ledger, Spool
from mailbot.pipeline.authenticate import AuthStep
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.migrate import MIGRATIONS
from mailbot.store.schema import ledger as ledger_table
from parsers import Reader

from .configs import issuer_config
from .conftest import TEST_SECRET
from .dkim_keys import publish, sign
from .dns_server import dns_server
from .test_daemon import notice_mail

DOMAIN = "maru-kensetsu.example.jp"  # notice_mail's From domain
RETRY = 300


class Clock:
    """The injected clock: starts at the real time, moves only when a test steps it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.now

    def step(self, seconds: float) -> None:
        with self.lock:
            self.now += timedelta(seconds=seconds)


class FlakyDns(Authenticator):
    """Test-only (see the module docstring): the verdict on a DKIM-signed mail of `DOMAIN`
    while `down` (DNS silent: temperror) and after (an aligned DKIM pass, DMARC pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.calls = 0

    def verdict(self, raw: bytes, *, intake: str = "imap") -> AuthVerdict:
        self.calls += 1
        if self.down:
            return AuthVerdict(source="self", from_domain=DOMAIN,
                               dkim=(DkimCheck(DOMAIN, "temperror", "sel", True),),
                               dmarc=DmarcCheck(DOMAIN, "temperror"),
                               error="DNS: no answer for sel._domainkey." + DOMAIN)
        return AuthVerdict(source="self", from_domain=DOMAIN,
                           dkim=(DkimCheck(DOMAIN, "pass", "sel", True),),
                           dmarc=DmarcCheck(DOMAIN, "pass", "reject", "dkim"))


@dataclass
class World:
    path: Path
    config: Config
    store: Store
    ledger: Ledger
    clock: Clock

    def pipeline(self, authenticator: Authenticator, **auth: Any) -> Pipeline:
        config = replace(self.config, auth=replace(self.config.auth, **auth))
        return Pipeline(config, self.store, self.ledger, Reader(), clock=self.clock,
                        authenticator=authenticator)

    def receive(self, raw: bytes) -> int:
        return self.ledger.receive("keiyaku", raw, now=self.clock()).id

    def record(self, row: int) -> dict[str, Any]:
        entry = self.ledger.get(row)
        assert entry is not None and entry.decision is not None
        return json.loads(entry.decision)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """〇〇市's LMTP mailbox `keiyaku` in a SQLite store holding the notices' guarantees."""
    monkeypatch.setenv("MAILBOT_SECRET", TEST_SECRET.decode())
    url = f"sqlite:///{tmp_path / 'store.db'}"
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(url, tmp_path / "spool"), encoding="utf-8")
    store = Store.open(url, secret=TEST_SECRET)
    store.apply([GuaranteeEvent(f"35075-{i:05d}M", "new", "Z28YUEAJ38ux", issuer="〇〇市",
                                source="t") for i in range(5)])
    config = load_config(path)
    try:
        yield World(path, config, store, Ledger(store.engine, Spool(config.spool_dir)), Clock())
    finally:
        store.close()


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def decision_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.decision for r in caplog.records if r.name == "mailbot.decision"]  # type: ignore[attr-defined]


# -- the ledger: claim takes the caller's clock, a deferral is not an attempt ----------------
def test_claim_skips_a_deferred_row_until_its_time_and_a_deferral_is_no_attempt(
        store: Store, tmp_path: Path) -> None:
    ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
    now = datetime.now(UTC)
    first = ledger.receive("keiyaku", notice_mail(1), now=now).id
    second = ledger.receive("keiyaku", notice_mail(2), now=now).id
    entry = ledger.claim(now=now)
    assert entry is not None and entry.id == first
    until = now + timedelta(seconds=RETRY)
    assert ledger.defer(first, until=until, reason="DNS", attempt=entry.attempts)
    assert not ledger.defer(first, until=until, reason="DNS")  # no longer in hand
    waiting = ledger.get(first)
    assert waiting is not None
    assert (waiting.state, waiting.attempts, waiting.deferrals) == ("received", 0, 1)
    assert waiting.not_before == until and waiting.last_error == "DNS"
    # The younger row is claimed first; the deferred one waits for the caller's clock.
    assert ledger.claim(now=now).id == second  # type: ignore[union-attr]
    assert ledger.claim(now=until - timedelta(seconds=1)) is None
    again = ledger.claim(now=until)
    assert again is not None and again.id == first
    assert (again.attempts, again.deferrals, again.not_before) == (1, 1, until)
    claimed = ledger.get(first)
    assert claimed is not None and claimed.not_before is None  # in hand, no longer waiting
    # Deferred far more often than MAX_ATTEMPTS, then two crashes: still not quarantined.
    for _ in range(MAX_ATTEMPTS + 2):
        assert ledger.defer(first, until=until, reason="DNS", attempt=again.attempts)
        again = ledger.claim(now=until)
        assert again is not None and again.id == first
    assert ledger.fail(first, "Traceback: boom", attempt=again.attempts) == "received"
    again = ledger.claim(now=until)
    assert again is not None
    assert ledger.fail(first, "Traceback: boom", attempt=again.attempts) == "received"
    assert ledger.get(first).deferrals == MAX_ATTEMPTS + 3  # type: ignore[union-attr]


# -- the pipeline ---------------------------------------------------------------------------
def test_a_temperror_defers_and_the_answer_at_the_retry_decides(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    dns = FlakyDns()
    pipeline = world.pipeline(dns, retries=3, retry_seconds=RETRY)
    row = world.receive(notice_mail(1))
    with caplog.at_level(logging.INFO, logger="mailbot"):
        assert pipeline.process_one()  # worked: the row was deferred, not decided, no crash
    entry = world.ledger.get(row)
    assert entry is not None and entry.decision is None
    assert (entry.state, entry.deferrals, entry.attempts) == ("received", 1, 0)
    assert entry.not_before == world.clock() + timedelta(seconds=RETRY)
    assert "temperror" in (entry.last_error or "")
    assert decision_lines(caplog) == []
    deferred = [r for r in caplog.records if r.name == "mailbot.daemon"]
    assert deferred and getattr(deferred[0], "deferrals", None) == 1
    # Not before its time …
    world.clock.step(RETRY - 1)
    assert not pipeline.process_one() and dns.calls == 1
    # … and then DNS answers: decided with the real verdict, saying that it waited.
    dns.down = False
    world.clock.step(1)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mailbot"):
        assert pipeline.process_one()
    record = world.record(row)
    assert record["status"] == "verified"
    assert record["auth_deferred"]["deferrals"] == 1
    assert record["auth_deferred"]["temporary"] is False
    assert record["auth_deferred"]["summary"].startswith("dmarc=pass")
    [line] = decision_lines(caplog)
    assert line["auth"] == f"dmarc=pass (p=reject) dkim=pass:{DOMAIN} spf=none [self]"
    assert line["auth_deferred"]["deferrals"] == 1


def test_after_the_last_retry_the_mail_is_decided_as_temporary_never_quarantined(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    dns = FlakyDns()  # DNS never answers
    retries = MAX_ATTEMPTS + 1  # more claims than the attempts that would quarantine it
    pipeline = world.pipeline(dns, retries=retries, retry_seconds=RETRY)
    row = world.receive(notice_mail(2))
    for n in range(1, retries + 1):
        assert pipeline.process_one()
        entry = world.ledger.get(row)
        assert entry is not None and (entry.state, entry.deferrals) == ("received", n)
        assert not pipeline.process_one()  # waits
        world.clock.step(RETRY)
    with caplog.at_level(logging.INFO, logger="mailbot.decision"):
        assert pipeline.process_one()
    entry = world.ledger.get(row)
    assert entry is not None and entry.state == "decided" and entry.last_error is None
    assert dns.calls == retries + 1
    record = world.record(row)
    assert record["auth_deferred"]["deferrals"] == retries
    assert record["auth_deferred"]["temporary"] is True  # decided as temporary: not a pass
    [line] = decision_lines(caplog)
    assert line["auth"].startswith("dmarc=temperror") and "dkim=temperror" in line["auth"]


def test_mail_that_authenticates_at_once_is_decided_without_waiting(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    dns = FlakyDns()
    dns.down = False
    pipeline = world.pipeline(dns)
    row = world.receive(notice_mail(3))
    with caplog.at_level(logging.INFO, logger="mailbot.decision"):
        assert pipeline.process_one()
    record = world.record(row)
    assert record["status"] == "verified" and "auth_deferred" not in record
    [line] = decision_lines(caplog)
    assert line["auth"].startswith("dmarc=pass") and "auth_deferred" not in line


def test_status_shows_the_row_waiting_for_dns(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = world.pipeline(FlakyDns(), retry_seconds=RETRY)
    world.receive(notice_mail(1))
    world.receive(notice_mail(2))
    assert pipeline.process_one() and pipeline.process_one()
    world.clock.step(60)
    until = world.clock() + timedelta(seconds=RETRY)
    world.receive(notice_mail(3))  # deferred a minute later: not the earliest
    assert pipeline.process_one() and not pipeline.process_one()
    capsys.readouterr()
    assert main(["status", "--config", str(world.path)]) == 0
    out = capsys.readouterr().out
    first = (until - timedelta(seconds=60)).isoformat()
    assert f"keiyaku: received 3; backlog 3 (waiting: waiting for DNS 3 until {first})" in out
    assert main(["status", "--config", str(world.path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["keiyaku"]["waiting"] == {"waiting for DNS": 3}
    assert report["keiyaku"]["dns_retry_at"] == first
    assert report["(total)"]["dns_retry_at"] == first
    # The monitoring check says why mail waits, so whoever is paged looks at the resolver.
    assert main(["status", "--config", str(world.path), "--check"]) in (0, 1, 2)
    assert "(3 waiting for DNS)" in capsys.readouterr().out


# -- the daemon -----------------------------------------------------------------------------
METRICS = '\n[metrics]\nlisten = "127.0.0.1:0"\n'


def test_the_daemon_retries_a_deferred_row_when_its_time_comes_without_new_mail(
        world: World) -> None:
    world.path.write_text(world.path.read_text(encoding="utf-8") + METRICS, encoding="utf-8")
    config = load_config(world.path)
    config = replace(config, auth=replace(config.auth, retries=2, retry_seconds=RETRY))
    daemon = Daemon(config, world.store, workers=1, clock=world.clock)
    dns = FlakyDns()
    daemon.pipeline.auth = AuthStep(config.auth, dns)
    row = daemon.ledger.receive("keiyaku", notice_mail(4), now=world.clock()).id
    thread = threading.Thread(target=lambda: (daemon.start(), daemon.run()), daemon=True)
    thread.start()
    try:
        def deferrals() -> int:
            entry = daemon.ledger.get(row)
            return entry.deferrals if entry is not None else 0

        wait_for(lambda: deferrals() == 1, 30, "the row deferred")
        dns.down = False
        world.clock.step(RETRY)  # nothing else happens: no mail, no news
        wait_for(lambda: daemon.ledger.get(row).state in ("decided", "replied"),  # type: ignore[union-attr]
                 30, "the deferred row decided at its time")
        assert dns.calls == 2  # tried once, then once more at its time: never before
        metrics = daemon.monitor.metrics
        assert metrics is not None
        sample = metrics.registry.get_sample_value
        assert sample("mailbot_auth_deferrals_total", {"mailbox": "keiyaku"}) == 1
        assert sample("mailbot_auth_verdicts_total", {"result": "temperror"}) == 1
        assert sample("mailbot_auth_verdicts_total", {"result": "pass"}) == 1
        assert sample("mailbot_auth_seconds_count", {}) == 2
        assert world.record(row)["auth_deferred"]["deferrals"] == 1
    finally:
        daemon.stop.set()
        daemon.news.set()
        thread.join(timeout=30)
        daemon.shutdown()


# -- migration 0009 -------------------------------------------------------------------------
def test_migration_0009_upgrades_a_0008_ledger(store_url: str, tmp_path: Path) -> None:
    engine = create_engine(store_url)
    alembic = AlembicConfig()
    alembic.set_main_option("script_location", str(MIGRATIONS))
    at = datetime.now(UTC)
    try:
        with engine.begin() as connection:
            alembic.attributes["connection"] = connection
            command.upgrade(alembic, "0008_store_meta")
            tables = MetaData()
            tables.reflect(connection)
            connection.execute(tables.tables["ledger"].insert().values(  # 0008's columns only
                mailbox="keiyaku", sha256="a" * 64, spool_name="a" * 64 + ".eml", size=1,
                received_at=at, state="received", attempts=0, action_state="none",
                reply_wanted=True))
    finally:
        engine.dispose()
    store = Store.open(store_url, secret=TEST_SECRET)  # migrates to the newest revision
    try:
        with store.engine.connect() as conn:
            row = conn.execute(select(ledger_table.c.not_before, ledger_table.c.deferrals)).one()
            indexes = {i["name"]: i["column_names"]
                       for i in inspect(conn).get_indexes("ledger")}
        assert tuple(row) == (None, 0)
        assert indexes["ix_ledger_claim"] == ["state", "not_before"]
        ledger = Ledger(store.engine, Spool(tmp_path / "spool"))
        entry = ledger.claim(now=at)
        assert entry is not None and (entry.deferrals, entry.not_before) == (0, None)
        assert ledger.defer(entry.id, until=at + timedelta(seconds=RETRY), reason="DNS")
        assert ledger.claim(now=at) is None
    finally:
        store.close()
    engine = create_engine(store_url)
    try:  # and back down: the wait is lost, the row stays
        with engine.begin() as connection:
            alembic.attributes["connection"] = connection
            command.downgrade(alembic, "0008_store_meta")
            columns = {c["name"] for c in inspect(connection).get_columns("ledger")}
            assert "not_before" not in columns and "deferrals" not in columns
            assert connection.execute(text("SELECT state FROM ledger")).scalar_one() == \
                "received"
    finally:
        engine.dispose()


# -- the real authenticator against a silent DNS server ---------------------------------------
def test_a_silent_dns_server_gives_a_deferral_and_its_answer_the_real_verdict(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing mocked: dkimpy signs, the real `Authenticator` asks a real DNS server on
    loopback."""
    with dns_server() as dns:
        settings = dict(resolvers=(dns.address,), timeout_seconds=0.5, retries=1,
                        retry_seconds=RETRY)
        signed = sign(notice_mail(1), DOMAIN)
        dns.silent = True
        pipeline = world.pipeline(Authenticator(replace(world.config.auth, **settings)),
                                  **settings)
        row = world.receive(signed)
        assert pipeline.process_one()  # a silent DNS server: a deferral, not a crash
        entry = world.ledger.get(row)
        assert entry is not None and entry.decision is None
        assert (entry.state, entry.deferrals, entry.attempts) == ("received", 1, 0)
        # DNS answers again: at its time the row is decided with the real verdict.
        publish(dns, DOMAIN)
        dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject")
        dns.silent = False
        world.clock.step(RETRY)
        with caplog.at_level(logging.INFO, logger="mailbot.decision"):
            assert pipeline.process_one()
        record = world.record(row)
        assert record["status"] == "verified"
        assert record["auth_deferred"]["temporary"] is False
        [line] = decision_lines(caplog)
        assert line["auth"].startswith("dmarc=pass") and f"dkim=pass:{DOMAIN}" in line["auth"]
        # Silent for good (a domain never answered for): decided as temporary after the retry.
        dns.silent = True
        stranger = notice_mail(2).replace(DOMAIN.encode(), b"sankaku-kogyo.example.jp")
        other = world.receive(sign(stranger, "sankaku-kogyo.example.jp"))
        assert pipeline.process_one() and not pipeline.process_one()
        world.clock.step(RETRY)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="mailbot.decision"):
            assert pipeline.process_one()
        record = world.record(other)
        assert record["auth_deferred"] == {**record["auth_deferred"], "deferrals": 1,
                                           "temporary": True}
        [line] = decision_lines(caplog)
        assert "temperror" in line["auth"]

"""`[metrics]`: the Prometheus endpoint and `/healthz` of `mailbot run` (issue 13).

The end-to-end test runs the daemon as `mailbot run` does, with an LMTP listener and
`[metrics] listen = "127.0.0.1:0"`, on a store in a PostgreSQL server of its own: mails
delivered over LMTP show in `/metrics` as counted, and `/healthz` answers 503 once that
server has been stopped longer than `down_seconds`, 200 again after it restarts. The rest
check the config keys, the health rules (with a clock of their own) and the gauges read
from the database, on SQLite.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from mailbot import __version__
from mailbot.backlog import backlogs
from mailbot.config import ConfigError, load_config
from mailbot.ledger import Ledger, Spool
from mailbot.monitor import Health, Monitor
from mailbot.samples.catalog import all_samples
from mailbot.store import GuaranteeEvent, Store
from mailbot.store.schema import ledger, outbox

from .configs import issuer_config
from .conftest import TEST_SECRET
from .hostile_campaign import ISSUER_INBOX, RunningDaemon, lmtp_deliver
from .servers import PG_BIN, _as_postgres, postgres_server
from .test_daemon import wait_for

METRICS = '\n[metrics]\nlisten = "127.0.0.1:0"\ndown_seconds = 1\n'
# Notices in one PDF, in two PDFs, in a typed body; the last one the store does not know.
SAMPLES = ("ejcs_cid", "two_pdfs", "body_shift_jis", "fullwidth_values")


def get(url: str) -> tuple[int, str]:
    """Status and body of a GET (a 503 is an answer, not an error)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def samples(text_: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page: (name, sorted labels) → value."""
    out = {}
    for family in text_string_to_metric_families(text_):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def register(store: Store, names: tuple[str, ...]) -> None:
    """The guarantees of the samples `names`, issued by 〇〇市."""
    store.apply([GuaranteeEvent(n["guarantee_number"], "new", n["auth_key"], issuer="〇〇市",
                                kind=n["kind"], project_name=n["project_name"],
                                contractor=n["contractor"], source="t")
                 for s in all_samples(names) for n in s.expected["notices"]])


def pdf_parts(raw: bytes) -> int:
    message = message_from_bytes(raw, policy=policy.default)
    return sum(1 for part in message.walk()
               if (part.get_filename() or "").lower().endswith(".pdf"))


class PrivatePostgres:
    """A PostgreSQL server this test may stop and start again (same folder, same port)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        self.data = Path(row[0])
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])

    def _ctl(self, *args: str) -> None:
        run = subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
                             capture_output=True, text=True)
        assert run.returncode == 0, (run.stdout, run.stderr)

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        folder = self.data.parent  # as tests/servers.py lays it out
        options = (f"-h 127.0.0.1 -p {self.port} -k {folder} -c fsync=off "
                   "-c full_page_writes=off")
        self._ctl("-o", options, "-l", str(folder / "log"), "-w", "start")


@pytest.fixture
def private_pg():
    with postgres_server() as url:
        yield PrivatePostgres(url)


def test_metrics_count_what_came_in_and_healthz_follows_the_database(private_pg, tmp_path):
    url = private_pg.url
    store = Store.open(url, secret=TEST_SECRET)
    mails = [s.data for s in all_samples(SAMPLES)]
    try:
        register(store, SAMPLES[:-1])  # the last sample's notice is unknown to the store
        path = tmp_path / "mailbot.toml"
        path.write_text(issuer_config(url, tmp_path / "spool") + METRICS, encoding="utf-8")
        with RunningDaemon(load_config(path), store, workers=1) as running:
            daemon = running.daemon
            base = f"http://127.0.0.1:{daemon.monitor.port}"
            assert get(base + "/healthz") == (200, "ok\n")
            for raw in mails:
                assert [code for code, _ in lmtp_deliver(running.port, raw, [ISSUER_INBOX])
                        ] == [250]
            assert lmtp_deliver(running.port, mails[0], [ISSUER_INBOX])[0][0] == 250  # retry

            def decided() -> int:
                with store.engine.connect() as conn:
                    return len(conn.execute(select(ledger.c.id).where(
                        ledger.c.state == "decided")).all())

            wait_for(lambda: decided() == len(mails), 120, "every mail decided")
            daemon.outgoing.queue(datetime.now(UTC))  # replies rendered into the outbox
            with store.engine.connect() as conn:
                records = [json.loads(d) for d in conn.execute(select(ledger.c.decision))
                           .scalars()]
                queued = len(conn.execute(select(outbox.c.id).where(
                    outbox.c.state == "queued")).all())
                backlog = backlogs(conn)["keiyaku"].total

            status, page = get(base + "/metrics")
            assert status == 200
            got = samples(page)

            def messages(status: str) -> float:
                return got[("mailbot_messages_total",
                            (("mailbox", "keiyaku"), ("status", status)))]

            assert messages("received") == len(mails)  # the relay's retry is no new mail
            assert messages("decided") == len(mails)
            assert messages("duplicate") == 0 and messages("quarantined") == 0
            outcomes = Counter(o for r in records for o in r["outcomes"])
            assert outcomes["unknown_number"] == 1 and outcomes["verified"] > 0, outcomes
            assert {labels[0][1]: value for (name, labels), value in got.items()
                    if name == "mailbot_outcomes_total"} == dict(outcomes)
            assert got[("mailbot_read_seconds_count", ())] == sum(map(pdf_parts, mails)) > 1
            assert got[("mailbot_source_up", (("mailbox", "keiyaku"),))] == 1
            assert got[("mailbot_build_info", (("version", __version__),))] == 1
            assert got[("mailbot_outbox_messages", (("state", "queued"),))] == queued > 0
            assert got[("mailbot_backlog_messages", (("mailbox", "keiyaku"),))] == backlog > 0
            assert get(base + "/healthz") == (200, "ok\n")

            private_pg.stop()
            wait_for(lambda: get(base + "/healthz")[0] == 503, 60, "/healthz to say 503")
            status, body = get(base + "/healthz")
            assert status == 503 and body.startswith("database down for "), body
            assert get(base + "/metrics")[0] == 200  # the scrape still answers, without gauges
            private_pg.start()
            wait_for(lambda: get(base + "/healthz") == (200, "ok\n"), 60, "/healthz 200 again")
            assert get(base + "/nothing")[0] == 404
        assert daemon.monitor.port is None  # shutdown stopped the server
    finally:
        store.close()


def test_healthz_waits_down_seconds_and_names_what_is_down() -> None:
    now = [1000.0]
    health = Health(down_seconds=30, monotonic=lambda: now[0])
    alive = [True]
    health.loop("pipeline loop main", lambda: alive[0])
    assert health.check().ok
    health.source("keiyaku", False)
    health.database(False)
    now[0] += 30
    assert health.check().ok  # down, but not longer than 30 s
    now[0] += 1
    verdict = health.check()
    assert not verdict.ok
    assert verdict.problems == ("database down for 31 s (limit 30 s)",
                                "source keiyaku down for 31 s (limit 30 s)")
    health.database(True)
    health.database(False)  # down again: counted from now, not from the first outage
    assert health.check().problems == ("source keiyaku down for 31 s (limit 30 s)",)
    health.source("keiyaku", True)
    assert health.check().ok
    alive[0] = False
    assert health.check().problems == ("pipeline loop main stopped",)
    alive[0] = True
    health.stopping = True
    assert health.check().text() == "mailbot is stopping\n"


def test_the_oldest_waiting_message_and_the_backlog_are_read_at_scrape_time(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(url, tmp_path / "spool") + METRICS, encoding="utf-8")
    config = load_config(path)
    store = Store.open(url, secret=TEST_SECRET)
    try:
        ledger_ = Ledger(store.engine, Spool(tmp_path / "spool"))
        for raw in [s.data for s in all_samples(SAMPLES[:2])]:
            ledger_.receive("keiyaku", raw)
        later = datetime.now(UTC) + timedelta(hours=2)
        monitor = Monitor(config.metrics, store.engine, lambda: later)
        from prometheus_client import generate_latest

        assert monitor.metrics is not None
        got = samples(generate_latest(monitor.metrics.registry).decode())
        oldest = got[("mailbot_oldest_waiting_seconds", (("mailbox", "keiyaku"),))]
        assert 7200 <= oldest < 7200 + 600
        assert got[("mailbot_backlog_messages", (("mailbox", "keiyaku"),))] == 2
    finally:
        store.close()


def test_without_metrics_the_monitor_keeps_nothing_and_serves_nothing(tmp_path) -> None:
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config("sqlite://", tmp_path / "spool"), encoding="utf-8")
    config = load_config(path)
    assert config.metrics.listen is None and config.metrics.down_seconds == 300
    monitor = Monitor(config.metrics)
    monitor.received("keiyaku")
    monitor.start()
    assert monitor.metrics is None and monitor.port is None


@pytest.mark.parametrize(("table", "error"), [
    ('listen = "9464"', "[metrics.listen] must be HOST:PORT"),
    ('listen = "127.0.0.1:70000"', "[metrics.listen] must be HOST:PORT"),
    ('listen = "127.0.0.1:9464"\ndown_seconds = 0', "[metrics.down_seconds] must be a whole"),
    ('listen = "127.0.0.1:9464"\nport = 1', "[metrics] unknown key 'port'"),
])
def test_metrics_config_errors_name_file_and_key(tmp_path, table: str, error: str) -> None:
    path = tmp_path / "mailbot.toml"
    path.write_text(f"[metrics]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {error}"), caught.value


def test_metrics_listen_reads_ipv6(tmp_path) -> None:
    path = tmp_path / "mailbot.toml"
    path.write_text('[metrics]\nlisten = "[::1]:9464"\ndown_seconds = 120\n', encoding="utf-8")
    metrics = load_config(path).metrics
    assert metrics.listen == ("::1", 9464) and metrics.down_seconds == 120


def test_two_monitors_in_one_process_count_apart() -> None:
    from mailbot.config import MetricsConfig

    one, two = (Monitor(MetricsConfig(listen=("127.0.0.1", 0))) for _ in range(2))
    one.received("keiyaku", 3)
    assert one.metrics is not None and two.metrics is not None
    value = one.metrics.registry.get_sample_value
    assert value("mailbot_messages_total", {"mailbox": "keiyaku", "status": "received"}) == 3
    assert two.metrics.registry.get_sample_value(
        "mailbot_messages_total", {"mailbox": "keiyaku", "status": "received"}) is None
    one.start()
    try:
        assert one.port and get(f"http://127.0.0.1:{one.port}/healthz") == (200, "ok\n")
    finally:
        one.stop()


def test_an_imap_source_reports_up_and_down(dovecot, tmp_path, monkeypatch) -> None:
    """`mailbot_source_up` and `/healthz` follow the IMAP server: down when it stops, up once
    the watcher has synced again after it restarts."""
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "secret")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    path = tmp_path / "mailbot.toml"
    path.write_text(issuer_config(url, tmp_path / "spool", imap_port=dovecot.imap_port)
                    + METRICS, encoding="utf-8")
    store = Store.open(url, secret=TEST_SECRET)
    try:
        with RunningDaemon(load_config(path), store, workers=1) as running:
            monitor = running.daemon.monitor
            assert monitor.metrics is not None
            registry = monitor.metrics.registry
            base = f"http://127.0.0.1:{monitor.port}"

            def up() -> float | None:
                return registry.get_sample_value("mailbot_source_up", {"mailbox": "keiyaku"})

            wait_for(lambda: up() == 1, 60, "the watcher connected")
            dovecot.deliver(ISSUER_INBOX, all_samples(["ejcs_cid"])[0].data)
            wait_for(lambda: samples(get(base + "/metrics")[1]).get(
                ("mailbot_messages_total", (("mailbox", "keiyaku"), ("status", "decided")))) == 1,
                60, "the mail counted as decided")
            assert get(base + "/healthz") == (200, "ok\n")
            dovecot.stop()
            wait_for(lambda: up() == 0, 60, "the source seen down")
            wait_for(lambda: get(base + "/healthz")[0] == 503, 60, "/healthz to say 503")
            assert get(base + "/healthz")[1].startswith("source keiyaku down for ")
            dovecot.start()
            wait_for(lambda: get(base + "/healthz") == (200, "ok\n"), 90, "/healthz 200 again")
            assert up() == 1
    finally:
        store.close()

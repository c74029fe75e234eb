"""Benchmark of the intake daemon against a bare IMAP fetch, on a real Dovecot.

    .venv/bin/python bench/bench_intake.py [--mails 1000] [--latency-mails 30]

1. Throughput: `--mails` generated contractor mails (the sample corpus: notice PDFs, zips,
   typed bodies …) are delivered by LMTP into two Dovecot users. The baseline logs in to one
   and fetches every message with imapclient in batches of 100 (what any IMAP tool must do);
   the daemon (`mailbot.daemon.Daemon`, in this process) watches the other and is timed until
   every message is decided and moved. Printed: seconds, mails/s, and the ratio.
2. Latency: with the daemon idling in IMAP IDLE, one mail per second is delivered; for each,
   the time from the end of the LMTP delivery to the decision committed in the ledger.
   Printed: p50 and p95.

Nothing is asserted; the figures are for the README and the issue notes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from imapclient import IMAPClient
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.config import load_config  # noqa: E402
from mailbot.daemon import Daemon  # noqa: E402
from mailbot.samples.catalog import corpus  # noqa: E402
from mailbot.store import Store  # noqa: E402
from mailbot.store.schema import ledger  # noqa: E402
from tests.configs import issuer_config  # noqa: E402
from tests.servers import dovecot_server  # noqa: E402

SECRET = b"bench-intake-secret-0123456789"
BASE_USER, DAEMON_USER = "baseline@issuer.example.jp", "keiyaku@issuer.example.jp"


def decided(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.state.in_(("decided", "replied")),
            ledger.c.action_state.in_(("done", "none")))).scalar_one()


def bare_fetch(dovecot, user: str) -> tuple[float, int]:
    started = time.perf_counter()
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=30) as client:
        client.login(user, "secret")
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        size = 0
        for start in range(0, len(uids), 100):
            for data in client.fetch(uids[start:start + 100], ["BODY.PEEK[]"]).values():
                size += len(data[b"BODY[]"])
    return time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--latency-mails", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ["MAILBOT_BENCH_IMAP_PASSWORD"] = "secret"
    users = {BASE_USER: "secret", DAEMON_USER: "secret"}
    with tempfile.TemporaryDirectory(prefix="mailbot-bench-intake-") as tmp, \
            dovecot_server(users) as dovecot:
        folder = Path(tmp)
        mails = [s.data for s in corpus(args.mails)]
        print(f"delivering {len(mails)} mails to two Dovecot users …", flush=True)
        for raw in mails:
            dovecot.deliver(BASE_USER, raw)
            dovecot.deliver(DAEMON_USER, raw)
        base_s, size = bare_fetch(dovecot, BASE_USER)

        url = f"sqlite:///{folder / 'store.db'}"
        path = folder / "mailbot.toml"
        path.write_text(issuer_config(url, folder / "spool", imap_port=dovecot.imap_port,
                                      user=DAEMON_USER, password_env="MAILBOT_BENCH_IMAP_PASSWORD"),
                        encoding="utf-8")
        store = Store.open(url, secret=SECRET)
        daemon = Daemon(load_config(path), store, workers=args.workers)
        started = time.perf_counter()
        thread = threading.Thread(target=lambda: (daemon.start(), daemon.run()), daemon=True)
        thread.start()
        while decided(store) < len(mails):
            time.sleep(0.05)
        daemon_s = time.perf_counter() - started

        latencies = []
        for i in range(args.latency_mails):
            raw = mails[i].replace(b"Message-ID: <", f"Message-ID: <lat{i}.".encode(), 1)
            before = decided(store)
            dovecot.deliver(DAEMON_USER, raw)
            sent = datetime.now(UTC)
            while decided(store) <= before:
                time.sleep(0.01)
            with store.engine.connect() as conn:
                last = conn.execute(select(func.max(ledger.c.decided_at))).scalar_one()
            last = last if last.tzinfo else last.replace(tzinfo=UTC)
            latencies.append(max((last - sent).total_seconds(), 0.0))
            time.sleep(max(0.0, 1.0 - latencies[-1]))
        daemon.stop.set()
        daemon.news.set()
        thread.join(timeout=30)
        daemon.shutdown()
        store.close()

    n = len(mails)
    print(f"\n{n} mails, {size / 2**20:.1f} MiB, daemon with {args.workers} PDF workers\n")
    print("| what | s | mails/s | × baseline time |")
    print("|---|---:|---:|---:|")
    print(f"| bare imapclient fetch (baseline) | {base_s:.1f} | {n / base_s:.0f} | 1.00 |")
    print(f"| daemon: fetch, spool, read, verify, decide, move | {daemon_s:.1f} | "
          f"{n / daemon_s:.0f} | {daemon_s / base_s:.2f} |")
    q = statistics.quantiles(latencies, n=20)
    print(f"\ndelivery → decision at 1 mail/s under IDLE ({len(latencies)} mails): "
          f"p50 {statistics.median(latencies):.2f} s, p95 {q[18]:.2f} s")


if __name__ == "__main__":
    main()

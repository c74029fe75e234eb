"""Benchmark of the intake daemon against a bare IMAP fetch, on a real Dovecot.

    .venv/bin/python bench/bench_intake.py [--mails 1000] [--latency-mails 30]

1. Throughput: `--mails` generated contractor mails (the sample corpus: notice PDFs, zips,
   typed bodies …) are delivered by LMTP into five Dovecot users. The baseline logs in to one
   and fetches every message with imapclient in batches of 100 (what any IMAP tool must do);
   the daemon (`mailbot.daemon.Daemon`, in this process) watches another and is timed until
   every message is decided and moved. Printed: seconds, mails/s, and the ratio.
2. Metrics: after a warm-up run (a few mails, not timed: the first daemon of a process
   pays for imports and caches), four timed runs, each on a user of its own, in the order
   without, with, with, without `[metrics]` (so a drift of the machine's load cancels out);
   with metrics, `/metrics` and `/healthz` are fetched every second while the daemon works.
   Printed: each run, and the ratio of the summed times (issue 13: at most 1.03).
   With `--compare auth` the four runs compare sender authentication instead (issue 14:
   at most 1.10): every mail carries an `Authentication-Results` header of the issuer's MX
   (`mx.issuer.example.jp`, dkim, spf and dmarc pass for its From domain, the common
   deployment); the "with" runs trust that authserv-id (`[auth] authserv_ids`), the
   "without" runs have an authenticator that checks nothing.
3. Latency: with the daemon idling in IMAP IDLE, one mail per second is delivered; for each,
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
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from imapclient import IMAPClient
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.auth import UNCHECKED, Authenticator, AuthVerdict  # noqa: E402
from mailbot.config import load_config  # noqa: E402
from mailbot.daemon import Daemon  # noqa: E402
from mailbot.samples.catalog import corpus  # noqa: E402
from mailbot.store import Store  # noqa: E402
from mailbot.store.schema import ledger  # noqa: E402
from tests.configs import issuer_config  # noqa: E402
from tests.servers import dovecot_server  # noqa: E402

SECRET = b"bench-intake-secret-0123456789"
BASE_USER, DAEMON_USER = "baseline@issuer.example.jp", "keiyaku@issuer.example.jp"
RUNS = (("keiyaku2@issuer.example.jp", False), ("metrics1@issuer.example.jp", True),
        ("metrics2@issuer.example.jp", True), (DAEMON_USER, False))  # the last one stays on
WARM_USER, WARM_MAILS = "warmup@issuer.example.jp", 40
METRICS = '\n[metrics]\nlisten = "127.0.0.1:0"\n'
AUTHSERV = "mx.issuer.example.jp"
AUTH = f'\n[auth]\nauthserv_ids = ["{AUTHSERV}"]\n'


class NoChecks(Authenticator):
    """The "without" side of `--compare auth`: no verdict is computed at all."""

    def verdict(self, raw: bytes, *, intake: str = "imap") -> AuthVerdict:
        return UNCHECKED


def with_results(raw: bytes) -> bytes:
    """`raw` as the issuer's MX delivers it: its Authentication-Results on top."""
    head = raw.split(b"\n\n", 1)[0]
    found = [line for line in head.splitlines() if line.lower().startswith(b"from:")]
    domain = found[0].rsplit(b"@", 1)[-1].strip(b" >\r").decode("ascii", "replace") \
        if found else "maru.example.jp"
    return (f"Authentication-Results: {AUTHSERV}; dkim=pass header.d={domain}; "
            f"spf=pass smtp.mailfrom={domain}; dmarc=pass header.from={domain}\r\n"
            ).encode() + raw


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


def make_daemon(folder: Path, dovecot, user: str, workers: int, metrics: bool,
                compare: str = "metrics") -> tuple[Daemon, Store, threading.Thread]:
    """A daemon watching `user`'s INBOX on a fresh SQLite store in `folder`; its thread not
    started yet."""
    folder.mkdir()
    url = f"sqlite:///{folder / 'store.db'}"
    path = folder / "mailbot.toml"
    path.write_text(issuer_config(url, folder / "spool", imap_port=dovecot.imap_port, user=user,
                                  password_env="MAILBOT_BENCH_IMAP_PASSWORD")
                    + ((METRICS if compare == "metrics" else AUTH) if metrics else ""),
                    encoding="utf-8")
    store = Store.open(url, secret=SECRET)
    daemon = Daemon(load_config(path), store, workers=workers)
    if compare == "auth" and not metrics:
        daemon.pipeline.auth.authenticator = NoChecks()
    thread = threading.Thread(target=lambda: (daemon.start(), daemon.run()), daemon=True)
    return daemon, store, thread


def stop_daemon(daemon: Daemon, store: Store, thread: threading.Thread) -> None:
    daemon.stop.set()
    daemon.news.set()
    thread.join(timeout=30)
    daemon.shutdown()
    store.close()


def scrape(daemon: Daemon, stop: threading.Event) -> tuple[int, float]:
    """Fetch /metrics and /healthz every second until `stop`: how many scrapes answered, and
    the seconds they took (the time the daemon spent answering, as the scraper saw it)."""
    while daemon.monitor.port is None and not stop.wait(0.05):
        pass
    done, busy = 0, 0.0
    while not stop.wait(1.0):
        started = time.perf_counter()
        for path in ("/metrics", "/healthz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{daemon.monitor.port}{path}",
                                        timeout=30) as response:
                response.read()
        busy += time.perf_counter() - started
        done += 1
    return done, busy


def timed_run(folder: Path, dovecot, user: str, workers: int, metrics: bool, count: int,
              compare: str = "metrics"
              ) -> tuple[tuple[float, float], Daemon, Store, threading.Thread, tuple[int, float]]:
    """Seconds (wall clock, and this process's CPU: the PDF workers are other processes) from
    start until `count` messages are decided and moved; the daemon still runs."""
    daemon, store, thread = make_daemon(folder, dovecot, user, workers, metrics, compare)
    metrics = metrics and compare == "metrics"  # only the metrics runs are scraped
    started, cpu = time.perf_counter(), time.process_time()
    thread.start()
    stop = threading.Event()
    scrapes: list[tuple[int, float]] = []
    scraper = threading.Thread(target=lambda: scrapes.append(scrape(daemon, stop)), daemon=True)
    if metrics:
        scraper.start()
    while decided(store) < count:
        time.sleep(0.05)
    seconds = (time.perf_counter() - started, time.process_time() - cpu)
    stop.set()
    if metrics:
        scraper.join(timeout=60)
    return seconds, daemon, store, thread, scrapes[0] if scrapes else (0, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--latency-mails", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--compare", choices=("metrics", "auth"), default="metrics",
                        help="what the four timed runs compare (see the module docstring)")
    args = parser.parse_args()
    label = "[metrics]" if args.compare == "metrics" else "[auth] (A-R trusted)"
    os.environ["MAILBOT_BENCH_IMAP_PASSWORD"] = "secret"
    users = {BASE_USER: "secret", **{user: "secret" for user, _ in RUNS}}
    every = {**users, WARM_USER: "secret"}
    with tempfile.TemporaryDirectory(prefix="mailbot-bench-intake-") as tmp, \
            dovecot_server(every) as dovecot:
        folder = Path(tmp)
        mails = [s.data for s in corpus(args.mails)]
        if args.compare == "auth":
            mails = [with_results(raw) for raw in mails]
        print(f"delivering {len(mails)} mails to {len(users)} Dovecot users …", flush=True)
        for raw in mails:
            for user in users:
                dovecot.deliver(user, raw)
        for raw in mails[:WARM_MAILS]:
            dovecot.deliver(WARM_USER, raw)
        base_s, size = bare_fetch(dovecot, BASE_USER)

        *warm, _ = timed_run(folder / "warm", dovecot, WARM_USER, args.workers, True,
                             min(WARM_MAILS, len(mails)))
        stop_daemon(*warm[1:])
        # (metrics, (wall s, CPU s), (scrapes, their seconds))
        runs: list[tuple[bool, tuple[float, float], tuple[int, float]]] = []
        for index, (user, metrics) in enumerate(RUNS):
            print(f"run {index + 1}/{len(RUNS)}: {'with' if metrics else 'without'} {label}",
                  flush=True)
            seconds, daemon, store, thread, scrapes = timed_run(
                folder / f"run{index}", dovecot, user, args.workers, metrics, len(mails),
                args.compare)
            runs.append((metrics, seconds, scrapes))
            if index < len(RUNS) - 1:
                stop_daemon(daemon, store, thread)
        daemon_s = sum(s[0] for m, s, _ in runs if not m) / 2
        metrics_s = sum(s[0] for m, s, _ in runs if m) / 2
        daemon_cpu = sum(s[1] for m, s, _ in runs if not m) / 2
        metrics_cpu = sum(s[1] for m, s, _ in runs if m) / 2

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
        stop_daemon(daemon, store, thread)

    n = len(mails)
    print(f"\n{n} mails, {size / 2**20:.1f} MiB, daemon with {args.workers} PDF workers\n")
    print("| what | s | mails/s | × baseline time |")
    print("|---|---:|---:|---:|")
    print(f"| bare imapclient fetch (baseline) | {base_s:.1f} | {n / base_s:.0f} | 1.00 |")
    print(f"| daemon: fetch, spool, read, verify, decide, move (mean of 2) | {daemon_s:.1f} | "
          f"{n / daemon_s:.0f} | {daemon_s / base_s:.2f} |")
    what = ("with [metrics], scraped every second" if args.compare == "metrics"
            else "with [auth]: the MX's Authentication-Results trusted")
    print(f"| the same {what} | "
          f"{metrics_s:.1f} | {n / metrics_s:.0f} | {metrics_s / base_s:.2f} |")
    print("\nruns in order: " + ", ".join(
        f"{'with' if m else 'without'} {s[0]:.1f} s (CPU {s[1]:.1f} s)"
        + (f" ({k[0]} scrapes, {k[1] * 1000 / max(k[0], 1):.0f} ms each)" if m and k[0] else "")
        for m, s, k in runs))
    bound = "issue 13's bound: +3 %" if args.compare == "metrics" else "issue 14's bound: +10 %"
    print(f"{label} on / off: {metrics_s / daemon_s:.3f} × the time "
          f"({(metrics_s / daemon_s - 1) * 100:+.1f} %; {bound})")
    print(f"{label} on / off, CPU time of this process (daemon and scraper, not the PDF "
          f"workers): {metrics_cpu / daemon_cpu:.3f} × ({(metrics_cpu / daemon_cpu - 1) * 100:+.1f} %)")
    q = statistics.quantiles(latencies, n=20)
    print(f"\ndelivery → decision at 1 mail/s under IDLE ({len(latencies)} mails): "
          f"p50 {statistics.median(latencies):.2f} s, p95 {q[18]:.2f} s")


if __name__ == "__main__":
    main()

"""Benchmark: the hostile-mail campaign against `mailbot run`, twice, on a real PostgreSQL.

    .venv/bin/python bench/bench_hostile.py [--mails 450] [--workers 2] [--seed 0]
    .venv/bin/python bench/bench_hostile.py --tracemalloc   # in-process: what run 2 retained

The daemon runs as `mailbot run` in a subprocess (its RSS is the figure a service manager
sees) with an issuer's inbox and a contractor's queue on one LMTP listener, a real
PostgreSQL store (`tests/servers.py`) and a local aiosmtpd relay, so replies, submissions
and staff alerts are rendered and sent as in production. In one run of this script:

1. Baseline: `--mails` ordinary sample mails (`mailbot.samples.corpus`) over LMTP, timed
   until every one is decided.
2. Hostile run 1 and run 2: `--mails` mutated mails each (`mailbot.samples.hostile`; run 2
   is the same campaign as new mail: same mutations, other Message-IDs and senders).

Printed per run: mails, LMTP answers (accepted / refused 5xx / temporary 4xx), ledger rows
decided / quarantined / stuck, seconds and throughput as a ratio of the baseline's; then
the tracebacks in the daemon's log, its RSS after each run and the ratio run 2 / run 1, and
the peak RSS of the daemon with its PDF workers (sampled every 50 ms). Nothing is asserted.

`--tracemalloc` runs the daemon in this process instead and prints the allocations that
grew from the end of run 1 to the end of run 2 (the retention the RSS ratio would show).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.config import load_config  # noqa: E402
from mailbot.samples.catalog import corpus  # noqa: E402
from mailbot.samples.hostile import base_mails, hostile_mails  # noqa: E402
from mailbot.store import Store  # noqa: E402
from mailbot.store.schema import ledger  # noqa: E402
from tests.hostile_campaign import (  # noqa: E402
    RunningDaemon,
    deliver,
    register_samples,
    write_config,
)
from tests.servers import Sink, create_database, free_port, postgres_server  # noqa: E402

SECRET = "bench-hostile-secret-0123456789abcdef"


@dataclass
class RunFigures:
    name: str
    mails: int
    accepted: int
    refused: int
    temporary: int
    seconds: float
    rss_mib: float


def rows_by_state(store: Store) -> Counter[str]:
    with store.engine.connect() as conn:
        return Counter(dict(conn.execute(select(ledger.c.state, func.count())
                                         .group_by(ledger.c.state)).all()))


def settle(store: Store, seconds: float = 1800) -> None:
    """Until no ledger row is received/processing (every 250 was a committed row)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        states = rows_by_state(store)
        if not states["received"] and not states["processing"]:
            return
        time.sleep(0.1)
    raise SystemExit(f"the daemon did not settle within {seconds:g} s: {rows_by_state(store)}")


class RssSampler:
    """Peak RSS of a process plus its children, sampled every 50 ms on a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def total(self) -> int:
        try:
            processes = [self.process, *self.process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        size = 0
        for process in processes:
            try:
                size += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return size

    def own(self) -> float:
        return self.process.memory_info().rss / 2**20

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, self.total())


def wait_port(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"the daemon did not listen on {port} within {seconds:g} s")


def one_run(name: str, mails: list[tuple[str, bytes]], port: int, store: Store,
            rss: Callable[[], float]) -> RunFigures:
    started = time.perf_counter()
    deliveries = deliver(port, mails)
    codes = [code for d in deliveries for code in d.codes]
    accepted = sum(1 for code in codes if code == 250)
    settle(store)
    seconds = time.perf_counter() - started
    gc.collect()
    return RunFigures(name, len(mails), accepted, sum(1 for c in codes if c >= 500),
                      sum(1 for c in codes if 400 <= c < 500), seconds, rss())


def report(runs: list[RunFigures], store: Store, tracebacks: int | None, peak: float | None,
           workers: int) -> None:
    states = rows_by_state(store)
    base = runs[0]
    print(f"\ndaemon with {workers} PDF workers, PostgreSQL store, each mail to the issuer's "
          "inbox, the contractor's queue or both (LMTP)\n")
    print("| run | mails | accepted | refused 5xx | 4xx | s | mails/s | × baseline throughput "
          "| RSS after (MiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        rate = run.mails / run.seconds
        print(f"| {run.name} | {run.mails} | {run.accepted} | {run.refused} | {run.temporary} "
              f"| {run.seconds:.1f} | {rate:.1f} | {rate / (base.mails / base.seconds):.2f} "
              f"| {run.rss_mib:.0f} |")
    decided = states["decided"] + states["replied"]
    stuck = states["received"] + states["processing"]
    print(f"\nledger rows: {sum(states.values())}; decided {decided}, quarantined "
          f"{states['quarantined']}, stuck {stuck}")
    with store.engine.connect() as conn:
        errors = conn.execute(select(ledger.c.last_error)
                              .where(ledger.c.state == "quarantined")).scalars().all()
    for kind, count in traceback_kinds("".join(
            e if "Traceback (most recent" in e else "Traceback (most recent call last):\n" + e
            for e in errors if e)).most_common(5):
        print(f"  quarantined: {count} × {kind}")
    if tracebacks is not None:
        print(f"tracebacks in the daemon's log: {tracebacks}")
    first, second = runs[1], runs[-1]
    last = len(runs) - 1
    print(f"RSS after hostile run 1: {first.rss_mib:.0f} MiB, after run {last}: "
          f"{second.rss_mib:.0f} MiB, run {last} / run 1 = {second.rss_mib / first.rss_mib:.3f}")
    if peak is not None:
        print(f"peak RSS of the daemon with its PDF workers: {peak / 2**20:.0f} MiB")


def campaign(args: argparse.Namespace) -> tuple[list[tuple[str, bytes]], ...]:
    bases = base_mails()
    ordinary = [(s.name, s.data) for s in corpus(args.mails, seed=args.seed)]
    runs = tuple([(m.name, m.data) for m in hostile_mails(args.mails, args.seed, run=r,
                                                          bases=bases)]
                 for r in range(1, max(2, args.runs) + 1))
    return (ordinary, *runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=450)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=2, help="hostile runs (at least 2)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="run the daemon in this process and show what run 2 retained")
    args = parser.parse_args()
    batches = campaign(args)
    sink = Sink()
    relay = Controller(sink, hostname="127.0.0.1", port=free_port())
    relay.start()
    with tempfile.TemporaryDirectory(prefix="mailbot-bench-hostile-") as tmp, \
            postgres_server() as server:
        folder = Path(tmp)
        url = create_database(server, "hostile")
        store = Store.open(url, secret=SECRET.encode())
        register_samples(store)
        port = free_port()
        path = write_config(folder, url, smtp_port=relay.port, listen_port=port,
                            flush_seconds=1)
        print(f"{args.mails} ordinary mails, then {args.mails} hostile mails twice …",
              flush=True)
        if args.tracemalloc:
            run_in_process(args, path, store, *batches)
        else:
            run_subprocess(args, folder, path, port, store, *batches)
        store.close()
    relay.stop()
    print(f"relay received {len(sink.accepted)} mails")


def traceback_kinds(log: str) -> Counter[str]:
    """Tracebacks in a log by their last line (the exception), chained ones counted once."""
    kinds: Counter[str] = Counter()
    for chunk in log.split("Traceback (most recent call last):")[1:]:
        if "The above exception was" in chunk or "During handling of the above" in chunk:
            continue  # the cause of the next one
        lines = [line for line in chunk.splitlines() if line and not line[0].isspace()]
        if lines:
            kinds[lines[0][:160]] += 1
    return kinds


def run_names(count: int) -> list[str]:
    return ["ordinary (baseline)", *(f"hostile run {r}" for r in range(1, count))]


def run_subprocess(args: argparse.Namespace, folder: Path, path: Path, port: int, store: Store,
                   *mails: list[tuple[str, bytes]]) -> None:
    env = {**os.environ, "MAILBOT_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    log_path = folder / "daemon.log"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "mailbot.cli", "run", "--config", str(path),
             "--workers", str(args.workers)], env=env, stdout=log, stderr=log)
    try:
        wait_port(port)
        sampler = RssSampler(daemon.pid)
        runs = [one_run(name, batch, port, store, sampler.own)
                for name, batch in zip(run_names(len(mails)), mails, strict=True)]
        sampler.stop.set()
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    kinds = traceback_kinds(log_path.read_text(errors="replace"))
    report(runs, store, sum(kinds.values()), sampler.peak, args.workers)
    for kind, count in kinds.most_common(8):
        print(f"  {count} × {kind}")


def run_in_process(args: argparse.Namespace, path: Path, store: Store,
                   *mails: list[tuple[str, bytes]]) -> None:
    config = load_config(path)
    process = psutil.Process()
    # Tracing slows every tick past the next one: APScheduler would say so each second.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    tracemalloc.start(12)
    snapshots = []
    with RunningDaemon(config, store, workers=args.workers, outbox_seconds=1.0) as running:
        runs = []
        for name, batch in zip(run_names(len(mails)), mails, strict=True):
            runs.append(one_run(name, batch, running.port, store,
                                lambda: process.memory_info().rss / 2**20))
            snapshots.append(tracemalloc.take_snapshot())
    report(runs, store, None, None, args.workers)
    print("(in this mode the RSS includes tracemalloc's own bookkeeping, which grows with "
          "every allocation traced: compare the allocations below, not the RSS)")
    print(f"\nallocations grown from the end of hostile run 1 to the end of run {len(runs) - 1}:")
    for stat in snapshots[-1].compare_to(snapshots[1], "traceback")[:10]:
        print(f"\n{stat.size_diff / 1024:+.0f} KiB in {stat.count_diff:+d} blocks")
        for line in stat.traceback.format()[-8:]:
            print("   ", line)


if __name__ == "__main__":
    main()

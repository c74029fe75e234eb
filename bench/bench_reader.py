"""Benchmark of the notice reader against a naive baseline, measured in the same run.

    .venv/bin/python bench/bench_reader.py [--mails 500] [--workers 2]

Generates `--mails` contractor mails across the sample variants (hostile ones — bombs and
the slow PDF — are measured separately, since the baseline would not survive them), then
reads them with: the naive baseline (`bench/naive.py`), the reader in one process, and the
reader with its worker pool. Prints throughput, accuracy and the ratio to the baseline, the
peak RSS of `mailbot parse --json` over all mails (the process and its workers), and how
fast a decompression bomb is stopped. Figures are ratios against the baseline because these
machines are noisy; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from naive import naive_read  # noqa: E402

from mailbot.samples.catalog import corpus  # noqa: E402
from mailbot.samples.special_pdfs import render_decompression_bomb_pdf  # noqa: E402
from parsers import InlineRunner, Limits, PdfPool, Reader  # noqa: E402

HOSTILE = {"pdf_bomb", "slow_pdf", "zip_bomb"}


def write_corpus(folder: Path, n: int) -> tuple[list[Path], list[dict]]:
    paths, expected = [], []
    for index, sample in enumerate(s for s in corpus(n * 2) if s.name not in HOSTILE):
        if index >= n:
            break
        path = folder / f"{index:04d}_{sample.filename}"
        path.write_bytes(sample.data)
        paths.append(path)
        expected.append(sample.expected)
    return paths, expected


def score(produced: list[list[tuple[str, str]]], expected: list[dict]) -> dict[str, int]:
    exact = wrong = missed = 0
    for got, want in zip(produced, expected, strict=True):
        truth = {(n["guarantee_number"], n["auth_key"]) for n in want["notices"]}
        got_set = set(got)
        exact += got_set == truth and len(got) == len(got_set)
        wrong += len(got_set - truth)
        missed += len(truth - got_set)
    return {"exact": exact, "wrong": wrong, "missed": missed}


def timed(fn: Callable[[], list[list[tuple[str, str]]]]) -> tuple[float, list]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def run_naive(paths: list[Path]) -> list[list[tuple[str, str]]]:
    out = []
    for path in paths:
        try:
            out.append(naive_read(path.read_bytes()))
        except Exception:
            out.append([])
    return out


def run_reader(paths: list[Path], reader: Reader) -> list[list[tuple[str, str]]]:
    return [[(n.guarantee_number, n.auth_key) for n in r.notices] for r in reader.read_many(paths)]


def peak_rss_of(cmd: list[str]) -> tuple[float, int]:
    """Run `cmd`, sampling the RSS of it and all its descendants; (seconds, peak bytes)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    return time.perf_counter() - started, peak


def bomb_check() -> tuple[int, float, int, list[str]]:
    """Bytes of the bomb, seconds to stop it, peak worker RSS, problem codes."""
    bomb = render_decompression_bomb_pdf()
    with PdfPool(1, Limits()) as pool:
        reader = Reader(pool, pool.limits)
        reader.read_bytes(b"%PDF-1.4\n%%EOF", "warm.pdf", "warm.pdf")  # start the worker
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            me = psutil.Process()
            while not done.is_set():
                for child in me.children(recursive=True):
                    try:
                        peak[0] = max(peak[0], child.memory_info().rss)
                    except psutil.Error:
                        pass
                time.sleep(0.01)

        watcher = threading.Thread(target=sample)
        watcher.start()
        started = time.perf_counter()
        result = reader.read_bytes(bomb, "bomb.pdf", "bomb.pdf")
        elapsed = time.perf_counter() - started
        done.set()
        watcher.join()
    return len(bomb), elapsed, peak[0], [p.code for p in result.problems]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mailbot-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        paths, expected = write_corpus(folder, args.mails)
        print(f"generated {len(paths)} mails in {time.perf_counter() - t0:.1f} s", flush=True)
        n_notices = sum(len(e["notices"]) for e in expected)

        rows = []
        secs, out = timed(lambda: run_naive(paths))
        rows.append(("naive baseline (stdlib + extract_text + regex)", secs, score(out, expected)))
        base = secs
        secs, out = timed(lambda: run_reader(paths, Reader(InlineRunner())))
        rows.append(("mailbot reader, one process", secs, score(out, expected)))
        with PdfPool(args.workers) as pool:
            Reader(pool).read_bytes(b"%PDF-1.4\n%%EOF", "warm.pdf", "warm.pdf")
            secs, out = timed(lambda: run_reader(paths, Reader(pool)))
        rows.append((f"mailbot reader, pool of {args.workers}", secs, score(out, expected)))

        print(f"\n{len(paths)} mails holding {n_notices} notices\n")
        print("| reader | s | notices/s | × baseline speed | exact mails | wrong notices | missed |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, secs, sc in rows:
            print(
                f"| {name} | {secs:.1f} | {n_notices / secs:.1f} | {base / secs:.2f} | "
                f"{sc['exact']}/{len(paths)} | {sc['wrong']} | {sc['missed']} |"
            )

        cmd = [sys.executable, "-m", "mailbot.cli", "parse", "--json", *map(str, paths)]
        secs, peak = peak_rss_of(cmd)
        print(
            f"\n`mailbot parse --json` on {len(paths)} mails: {secs:.1f} s, "
            f"peak RSS of the process tree {peak / 2**20:.0f} MiB"
        )

    size, secs, worker_peak, codes = bomb_check()
    print(
        f"decompression bomb of {size} bytes: stopped in {secs:.2f} s, worker peak RSS "
        f"{worker_peak / 2**20:.0f} MiB (limit {Limits().pdf_memory_bytes // 2**20} MiB above "
        f"the worker's start), problems {codes}"
    )


if __name__ == "__main__":
    main()

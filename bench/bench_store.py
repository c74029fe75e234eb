"""Benchmark of the guarantee store: verification and import against bare baselines.

    .venv/bin/python bench/bench_store.py [--guarantees 1000000] [--verifications 2000]

For SQLite and for a real PostgreSQL (started on loopback like the tests do), the store is
filled with `--guarantees` guarantees by a bulk insert, then measured:

- verification: the full default rule chain (`mailbot.verify.verify`, with a sender; a
  right key never consults the throttle) for random numbers with their right keys,
  against a bare indexed SELECT of the versions by number, each taking a connection from
  the pool;
- import: a CSV of `--import-rows` new guarantees through `read_import_file` +
  `Store.apply` (validation, idempotence checks, one transaction), against the bulk insert
  that filled the store.

Figures are ratios to the baseline measured in the same run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import bindparam, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.store import Store, contract_key  # noqa: E402
from mailbot.store.importfile import read_import_file  # noqa: E402
from mailbot.store.schema import guarantees, versions  # noqa: E402
from mailbot.verify import Claim, IssuerPolicy, verify  # noqa: E402
from parsers.model import KINDS  # noqa: E402
from tests.servers import create_database, postgres_server  # noqa: E402

SECRET = b"bench-secret-0123456789abcdef"


def number_of(i: int) -> str:
    return f"{30000 + i // 100000:05d}-{i % 100000:05d}M"


def key_of(i: int) -> str:
    return f"K{i:07d}abcd"


def bulk_load(store: Store, n: int, chunk: int = 20000) -> float:
    """Insert n guarantees (one version each) directly; returns seconds."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    with store.engine.begin() as conn:
        for start in range(0, n, chunk):
            rows_g, rows_v = [], []
            for i in range(start, min(start + chunk, n)):
                number = number_of(i)
                project = f"〇〇線道路改良工事（その{i % 997}）"
                rows_g.append({"guarantee_number": number, "latest_version": 1, "created_at": now})
                rows_v.append({
                    "guarantee_number": number, "version": 1, "event": "new", "change_no": None,
                    "key_hash": store.hash_key(key_of(i)), "kind": KINDS[i % 3],
                    "issuer": "〇〇市", "contractor": f"〇〇建設{i % 5000} 株式会社",
                    "project_name": project, "contract_amount": 100_000_000,
                    "guaranteed_amount": 10_000_000 + (i % 3) * 5_000_000,
                    "expires_on": date(2027, 3, 31), "awarded_on": date(2026, 8, 1),
                    "low_bid": False,
                    "contract_key": contract_key("〇〇市", project, f"〇〇建設{i % 5000} 株式会社"),
                    "row_hash": f"bulk{i}", "source": "bench", "recorded_at": now,
                })
            conn.execute(insert(guarantees), rows_g)
            conn.execute(insert(versions), rows_v)
            print(f"\r  loaded {min(start + chunk, n):,}/{n:,}", end="", flush=True)
    with store.engine.begin() as conn:
        # Planner statistics, as a live database has them (autovacuum would do this soon).
        conn.execute(text("ANALYZE"))
    print()
    return time.perf_counter() - started


def bench_lookups(store: Store, n: int, count: int) -> tuple[float, float]:
    rng = random.Random(1)
    picks = [rng.randrange(n) for _ in range(count)]
    # The baseline is as lean as SQLAlchemy allows: a prebuilt statement, rows as tuples.
    bare = select(*versions.c).where(versions.c.guarantee_number == bindparam("number"))
    started = time.perf_counter()
    for i in picks:
        with store.engine.connect() as conn:
            conn.execute(bare, {"number": number_of(i)}).all()
    bare_s = time.perf_counter() - started
    policy = IssuerPolicy(name="〇〇市")
    started = time.perf_counter()
    for i in picks:
        sub = Claim(number_of(i), key_of(i), date(2026, 9, 1), sender="addr:a@example.jp")
        result = verify(store, sub, policy)
        assert result.outcomes in (["verified"], ["amount_rule"]), result.outcomes
    verify_s = time.perf_counter() - started
    return bare_s, verify_s


def write_csv(path: Path, first: int, rows: int) -> None:
    headers = ["保証契約番号", "認証キー", "商品名", "発注者名", "請負契約者", "工事名", "請負金額",
               "保証金額", "保証期限", "落札日"]
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for i in range(first, first + rows):
            writer.writerow([
                number_of(i), key_of(i), KINDS[i % 3], "〇〇市", "〇〇建設 株式会社",
                f"△△浄水場更新工事（その{i}）", "100,000,000円", "10,000,000円", "令和9年3月31日",
                "2026/08/01",
            ])


def bench_backend(name: str, url: str, args: argparse.Namespace, folder: Path) -> list[str]:
    print(f"{name}: filling {args.guarantees:,} guarantees …", flush=True)
    store = Store.open(url, secret=SECRET)
    try:
        load_s = bulk_load(store, args.guarantees)
        bare_s, verify_s = bench_lookups(store, args.guarantees, args.verifications)
        csv_path = folder / f"import-{name}.csv"
        write_csv(csv_path, args.guarantees, args.import_rows)
        started = time.perf_counter()
        report = store.apply(read_import_file(csv_path))
        import_s = time.perf_counter() - started
        assert report.added == args.import_rows
    finally:
        store.close()
    n = args.verifications
    bulk_rate = args.guarantees / load_s
    import_rate = args.import_rows / import_s
    return [
        f"| {name} | bare indexed SELECT by number | {n / bare_s:,.0f}/s | "
        f"{bare_s / n * 1e3:.2f} ms | 1.00 |",
        f"| {name} | verify, full default chain | {n / verify_s:,.0f}/s | "
        f"{verify_s / n * 1e3:.2f} ms | {verify_s / bare_s:.2f} |",
        f"| {name} | bulk insert (baseline for import) | {bulk_rate:,.0f} rows/s | | 1.00 |",
        f"| {name} | `store import` CSV ({args.import_rows:,} rows) | {import_rate:,.0f} rows/s | "
        f"| {bulk_rate / import_rate:.2f} slower |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guarantees", type=int, default=1_000_000)
    parser.add_argument("--verifications", type=int, default=2000)
    parser.add_argument("--import-rows", type=int, default=20_000)
    args = parser.parse_args()
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mailbot-bench-store-") as tmp:
        folder = Path(tmp)
        rows += bench_backend("sqlite", f"sqlite:///{folder / 'store.db'}", args, folder)
        with postgres_server() as server:
            url = create_database(server, "bench")
            rows += bench_backend("postgresql", url, args, folder)
    print(f"\n{args.guarantees:,} guarantees in the store\n")
    print("| backend | operation | rate | per op | × baseline |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

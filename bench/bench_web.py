"""Benchmark of 受付一覧 (the console's mail list) over a large ledger, against bare SQL.

    .venv/bin/python bench/bench_web.py [--rows 100000] [--requests 200] [--postgres URL]

Fills a store (SQLite by default, or the PostgreSQL database at `--postgres`) with `--rows`
ledger rows and their `ledger_notices` by a bulk insert — two issuers, a spread of states,
statuses and outcomes over a year — runs ANALYZE, serves the console in-process (a real
uvicorn on loopback, `mailbot.web.server.Background`, via tests/web_console.py) and logs in
as 〇〇市's clerk with httpx. For each case it measures the time per request on loopback
(the whole page: session, scope, query, rendering) and, in the same run, the page's bare
SELECT (`mailbot.web.mail_list.page_query`, the same conditions, through SQLAlchemy Core,
no rendering), and prints p50/p95 and the ratios. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.store.schema import ledger, ledger_notices  # noqa: E402
from mailbot.web import mail_list  # noqa: E402
from mailbot.web.accounts import Accounts  # noqa: E402
from mailbot.web.scope import Scope  # noqa: E402
from tests.web_console import Console, console  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
PROJECTS = ("浄水場修繕工事", "道路改良工事", "小学校体育館改修工事", "下水道管渠更生工事",
            "橋梁補修工事", "公園整備工事")
# (state, status, outcomes, review?) with their weights
KINDS = (("replied", "verified", " verified ", False, 70),
         ("replied", "discrepancy", " key_mismatch ", True, 12),
         ("replied", "discrepancy", " no_text_layer ", True, 6),
         ("decided", "duplicate", None, False, 5),
         ("quarantined", None, None, False, 2),
         ("received", None, None, False, 5))


def number_of(i: int) -> str:
    return f"{35000 + i // 90000:05d}-{i % 90000:05d}M"


def fill(web: Console, n: int, chunk: int = 10000) -> float:
    """`n` ledger rows (and a notice for each decided one); returns seconds."""
    rng = random.Random(16)
    weights = [k[-1] for k in KINDS]
    started = time.perf_counter()
    with web.store.engine.begin() as conn:
        for start in range(0, n, chunk):
            rows, notices = [], []
            for i in range(start, min(start + chunk, n)):
                state, status, outcomes, review, _w = rng.choices(KINDS, weights)[0]
                box = "maru" if i % 3 else "batsu"
                decided = status is not None
                rows.append({
                    "id": i + 1, "mailbox": box, "sha256": f"{i:064x}", "spool_name": f"x/{i}",
                    "size": 40000, "message_id": f"<{i}@maru-kensetsu.example.jp>",
                    "sender": f"tanto{i % 700}@kensetsu{i % 90}.example.jp",
                    "subject": "認証キーのお知らせ",
                    "received_at": NOW - timedelta(minutes=5 * (n - i)),
                    "state": state, "attempts": 1, "action_state": "none",
                    "reply_wanted": True, "deferrals": 0,
                    "decided_at": NOW if decided else None,
                    "issuer": box if decided else None, "status": status,
                    "outcomes": outcomes,
                    "folder": ("電子保証/要確認" if review else "電子保証/処理済") if decided else None,
                    "decision": json.dumps({"status": status}) if decided else None,
                    "copy_of": i if status == "duplicate" and i else None})
                if decided:
                    notices.append({"ledger_id": i + 1, "guarantee_number": number_of(i),
                                    "project_name": f"〇〇{PROJECTS[i % len(PROJECTS)]}第{i % 97}期",
                                    "contractor": f"〇〇建設{i % 300}株式会社"})
            conn.execute(insert(ledger), rows)
            conn.execute(insert(ledger_notices), notices)
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('ledger', 'id'), "
                              "(SELECT max(id) FROM ledger))"))
    with web.store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def timed(fn: Callable[[], object], times: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 \
        else values[0] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database to fill")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            console(Path(tmp), store_url=args.postgres) as web:
        seconds = fill(web, args.rows)
        print(f"{web.store.engine.dialect.name}: {args.rows:,} ledger rows in {seconds:.1f} s "
              f"({args.rows / seconds:,.0f} rows/s); {args.requests} requests per case, "
              "as 〇〇市's clerk (scoped to one of two issuers)")
        clerk = web.login("maru-clerk")
        account = Accounts(web.store.engine).get("maru-clerk")
        assert account is not None
        scope = Scope.of(account, web.config)
        offered = mail_list.choices(web.config, scope)
        with web.store.engine.connect() as conn:
            deep = conn.execute(select(ledger.c.received_at, ledger.c.id)
                                .where(scope.ledger_clause())
                                .order_by(ledger.c.received_at.desc(), ledger.c.id.desc())
                                .offset(args.rows // 3).limit(1)).one()  # setup only
        cursor = mail_list.Cursor(deep.received_at.replace(tzinfo=UTC), deep.id)
        wanted = number_of(args.rows - 2 if (args.rows - 2) % 3 else args.rows - 4)
        cases = [("first page", {}), ("deep keyset page", {"after": cursor.encode()}),
                 ("number search", {"q": wanted}), ("project search", {"q": "体育館改修"}),
                 ("filtered (要確認 + key_mismatch)", {"state": "review",
                                                     "outcome": "key_mismatch"})]
        print(f"{'case':36} {'rows':>5} {'page p50':>9} {'p95':>8} {'SQL p50':>8} {'p95':>8} "
              f"{'× p50':>7} {'× p95':>7}")
        for name, params in cases:
            filters = mail_list.Filters.of(params)
            after = mail_list.Cursor.decode(params["after"]) if "after" in params else None
            where = mail_list.conditions(filters, scope, offered)
            query = mail_list.page_query(where, after)

            def page(params: dict[str, str] = params) -> None:
                answer = clerk.get("/mails", params=params)
                assert answer.status_code == 200, answer.text[:500]

            def bare(query: object = query) -> int:
                with web.store.engine.connect() as conn:
                    return len(conn.execute(query).all())  # type: ignore[call-overload]

            shown = bare()
            pages, sqls = timed(page, args.requests), timed(bare, args.requests)
            print(f"{name:36} {min(shown, mail_list.PAGE_SIZE):5} {p(pages, 50):8.1f}ms "
                  f"{p(pages, 95):6.1f}ms {p(sqls, 50):6.1f}ms {p(sqls, 95):6.1f}ms "
                  f"{p(pages, 50) / p(sqls, 50):7.1f} {p(pages, 95) / p(sqls, 95):7.1f}")


if __name__ == "__main__":
    main()

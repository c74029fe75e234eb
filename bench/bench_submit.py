"""Benchmark of the contractor side: what turning a notice into a submission costs.

    .venv/bin/python bench/bench_submit.py [--notices 300]

`--notices` surety mails, each with one notice PDF for a distinct guarantee registered in a
SQLite store (half for an issuer found by the store, a quarter by the mail's text, a quarter
by a 工事名 rule), are put in the ledger of a contractor mailbox. Two runs over the same
mails, in this process with the same PDF worker pool:

- baseline: only reading each mail's notices (`Reader.read_bytes`), what any intake must do;
- contractor pipeline: claim, read, find the issuer, render the submission in its form with
  the PDF attached, and commit the decision, the submission row and its outbox row.

Printed: seconds, notices/s, the time ratio against the baseline, the outbox bytes per
submission, and the process's peak RSS. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from mailbot.config import load_config  # noqa: E402
from mailbot.daemon import Pipeline  # noqa: E402
from mailbot.ledger import Ledger, Spool  # noqa: E402
from mailbot.samples.notice_pdf import NoticeFields, render_notice_pdf  # noqa: E402
from mailbot.store import GuaranteeEvent, Store  # noqa: E402
from mailbot.store.schema import outbox, submissions  # noqa: E402
from parsers import PdfPool, Reader  # noqa: E402
from tests.configs import CONTRACTOR  # noqa: E402

SECRET = b"bench-submit-secret-0123456789"
CONFIG = """
[store]
url = "sqlite:///{db}"
[spool]
dir = "{spool}"
""" + CONTRACTOR + """[issuers.city]
name = "〇〇市"
[issuers.city.submission]
to = "keiyaku@city.example.jp"
to_by_kind = {{ "前払金保証" = "kaikei@city.example.jp" }}
subject = "【電子保証】{{{{ project_no }}}} {{{{ project_name }}}}"
[issuers.town]
name = "△△町"
[issuers.town.submission]
to = "denshi@town.example.jp"
subject = "電子保証認証キー:{{{{ project_name }}}}"
charset = "iso-2022-jp"
[[projects]]
name = "town roads"
project = "町道"
issuer = "town"
[[projects]]
name = "numbers"
project = "(?P<project_no>R8-[0-9]+)"
[[mailboxes]]
name = "queue"
role = "contractor"
kind = "lmtp"
listen = "127.0.0.1:0"
"""


def notice_mail(i: int) -> tuple[bytes, str]:
    number, key = f"36{i % 1000:03d}-{i:05d}A", f"Bench{i:07d}"
    way = ("store", "store", "text", "project")[i % 4]
    project = f"R8-{i:04d} " + ("町道□□線舗装工事" if way == "project" else "〇〇浄水場修繕工事")
    message = EmailMessage()
    message["From"] = "info@hosho.example.jp"
    message["To"] = "denshi@maru.example.jp"
    message["Subject"] = "電子保証（認証キー）発行完了のお知らせ"
    message["Message-ID"] = make_msgid(idstring=f"b{i}", domain="hosho.example.jp")
    message.set_content("〇〇建設株式会社 御中\n" + ("△△町の工事です。\n" if way == "text" else ""))
    pdf = render_notice_pdf(NoticeFields(number, key, ("前払金保証", "契約保証")[i % 2], project,
                                         "〇〇建設株式会社", "東日本建設業保証株式会社"))
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="お知らせ.pdf")
    return message.as_bytes(), way


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notices", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mailbot-bench-submit-"))
    (folder / "mailbot.toml").write_text(
        CONFIG.format(db=folder / "s.db", spool=folder / "spool"), encoding="utf-8")
    config = load_config(folder / "mailbot.toml")
    store = Store.open(config.store_url or "", secret=SECRET)
    mails = [notice_mail(i) for i in range(args.notices)]
    store.apply([GuaranteeEvent(f"36{i % 1000:03d}-{i:05d}A", "new", f"Bench{i:07d}",
                                issuer="〇〇市", source="bench")
                 for i, (_raw, way) in enumerate(mails) if way == "store"])
    ledger = Ledger(store.engine, Spool(config.spool_dir))
    for raw, _way in mails:
        ledger.receive("queue", raw)
    with PdfPool(2) as pool:
        reader = Reader(pool, pool.limits)
        reader.read_bytes(mails[0][0], "warm-up")
        started = time.perf_counter()
        for raw, _way in mails:
            reader.read_bytes(raw, "bench")
        baseline = time.perf_counter() - started
        pipeline = Pipeline(config, store, ledger, reader)
        started = time.perf_counter()
        while pipeline.process_one():
            pass
        full = time.perf_counter() - started
    with store.engine.connect() as conn:
        states = dict(conn.execute(select(submissions.c.state, func.count())
                                   .group_by(submissions.c.state)).all())
        size = conn.execute(select(func.avg(func.length(outbox.c.raw)))).scalar_one()
    store.close()
    n = args.notices
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n} notices, one PDF each; submissions: {states}")
    print(f"{'run':<46}{'seconds':>9}{'notices/s':>11}{'× baseline time':>17}")
    print(f"{'baseline: read the notices only':<46}{baseline:>9.2f}{n / baseline:>11.1f}"
          f"{1.0:>17.2f}")
    print(f"{'contractor pipeline: read, route, render, commit':<46}{full:>9.2f}"
          f"{n / full:>11.1f}{full / baseline:>17.2f}")
    print(f"outbox bytes per submission: {size / 1024:.1f} KiB; peak RSS of this process: "
          f"{peak:.0f} MiB (workers not included)")


if __name__ == "__main__":
    main()

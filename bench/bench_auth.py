"""Benchmark of sender authentication per mail, against the intake's reading of the same mails.

    .venv/bin/python bench/bench_auth.py [--mails 200]

Baseline: `parsers.Reader` (inline, no sandbox) reading each mail of the sample corpus — the
intake's own work per mail. Then, on the same mails: (a) the verdict from a trusted
`Authentication-Results` header (parsing only, no DNS), and (b) self-verified DKIM + DMARC
against the real DNS fixture on loopback (`tests/dns_server.py`), each mail signed with
dkimpy. Printed: ms per mail and the ratio to the baseline. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.auth import Authenticator, AuthSettings  # noqa: E402
from mailbot.samples.catalog import corpus  # noqa: E402
from parsers import InlineRunner, Reader  # noqa: E402
from tests.dkim_keys import publish, sign  # noqa: E402
from tests.dns_server import dns_server  # noqa: E402

DOMAIN = "maru.example.jp"
MX = "mx.city.example.jp"
AR = (f"Authentication-Results: {MX}; dkim=pass header.d={DOMAIN} header.s=sel;"
      f" spf=pass smtp.mailfrom=info@{DOMAIN}; dmarc=pass (p=reject dis=none)"
      f" header.from={DOMAIN}\r\n").encode()
HOP = f"Received: from mail.{DOMAIN} by {MX} with ESMTPS id 1\r\n".encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=200)
    args = parser.parse_args()
    mails = [s.data for s in corpus(args.mails, seed=14)]
    reader = Reader(InlineRunner())
    started = time.perf_counter()
    for raw in mails:
        reader.read_bytes(raw, "bench")
    base = (time.perf_counter() - started) / len(mails)
    with dns_server() as dns:
        publish(dns, DOMAIN)
        dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject")
        settings = AuthSettings(resolvers=(dns.address,), authserv_ids=(MX,))
        auth = Authenticator(settings)
        with_ar = [AR + HOP + raw for raw in mails]
        started = time.perf_counter()
        results = [auth.verdict(raw) for raw in with_ar]
        ar = (time.perf_counter() - started) / len(mails)
        ar_ok = sum(v.source.startswith("authres") for v in results)
        signed = []
        for raw in mails:
            try:
                signed.append(sign(raw, DOMAIN))
            except Exception:  # noqa: BLE001 — a sample dkimpy will not sign (no From)
                signed.append(raw)
        self_auth = Authenticator(AuthSettings(resolvers=(dns.address,)))
        started = time.perf_counter()
        verdicts = [self_auth.verdict(raw) for raw in signed]
        own = (time.perf_counter() - started) / len(mails)
        passed = sum(any(c.result == "pass" for c in v.dkim) for v in verdicts)
    print(f"mails: {len(mails)}")
    print(f"intake read (baseline)      {base * 1000:8.2f} ms/mail  1.000")
    print(f"A-R parsing                 {ar * 1000:8.2f} ms/mail  {ar / base:.3f}"
          f"  ({ar_ok} from the header)")
    print(f"self-verified DKIM + DMARC  {own * 1000:8.2f} ms/mail  {own / base:.3f}"
          f"  ({passed} DKIM pass)")


if __name__ == "__main__":
    main()

"""`mailbot demo`: the main job on embedded defaults, with nothing to configure.

Until the daemon exists (issues 4–5) the demo shows the reader: it writes the bundled sample
contractor mails and notice PDFs to a folder, reads each one through the sandboxed worker
pool exactly as `mailbot parse` does, and prints what it found next to what the sample
really holds. Exit 0 when every sample read as expected.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from parsers import Limits, PdfPool, Reader

from .samples.catalog import TTF_VARIANTS, VARIANTS, all_samples
from .samples.notice_pdf import IPAEX_FONT_PATH

DEMO_TIMEOUT_S = 2.0


def _mask(key: str) -> str:
    return key[:4] + "*" * max(len(key) - 4, 0)


def _summary(notices: list[dict], problems: list[dict]) -> str:
    parts = [f"{n['guarantee_number']} {_mask(n['auth_key'])}" for n in notices]
    parts += [p["code"] for p in problems]
    return ", ".join(parts) or "-"


def run_demo(out: str) -> int:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    names = set(VARIANTS)
    if not IPAEX_FONT_PATH.exists():
        names -= TTF_VARIANTS
        print(f"note: {IPAEX_FONT_PATH} is not installed (Debian fonts-ipaexfont); "
              f"skipping the {len(TTF_VARIANTS)} embedded-TrueType samples")
    samples = all_samples(names)
    paths = []
    for sample in samples:
        path = folder / sample.filename
        path.write_bytes(sample.data)
        paths.append(path)
    print(f"wrote {len(samples)} sample mails and PDFs to {folder}/; reading them with a "
          f"{DEMO_TIMEOUT_S:g} s limit per PDF", flush=True)

    as_expected = 0
    width = max(len(s.name) for s in samples)
    print(f"\n{'sample':<{width}}  ok  what the reader found")
    # A short per-PDF timeout, as in the golden tests, so the slow sample ends quickly.
    with PdfPool(workers=2, limits=Limits(pdf_timeout_s=DEMO_TIMEOUT_S)) as pool:
        reader = Reader(pool, pool.limits)
        for sample, result in zip(samples, reader.read_many(paths), strict=True):
            got = result.to_json_obj()
            problems = [{"code": p["code"], "origin": p["origin"]} for p in got["problems"]]
            ok = got["notices"] == sample.expected["notices"] and (
                problems == sample.expected["problems"]
            )
            as_expected += ok
            print(f"{sample.name:<{width}}  {'✓' if ok else '✗'}   "
                  f"{_summary(got['notices'], got['problems'])}", flush=True)
    elapsed = time.monotonic() - started
    print(
        f"\n{as_expected}/{len(samples)} samples read as expected in {elapsed:.1f} s "
        f"(keys masked here; `mailbot parse --json {folder}/NAME` shows everything)."
    )
    if as_expected != len(samples):
        print("some samples did not read as expected", file=sys.stderr)
        return 1
    return 0

"""``python -m mailbot.samples DIR``: write every sample file and ``DIR/expected.jsonl``."""

from __future__ import annotations

import sys
from pathlib import Path

from mailbot.samples.catalog import all_samples, expected_lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m mailbot.samples DIR", file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    samples = all_samples()
    for sample in samples:
        (out / sample.filename).write_bytes(sample.data)
    (out / "expected.jsonl").write_text("\n".join(expected_lines(samples)) + "\n", encoding="utf-8")
    print(f"wrote {len(samples)} samples and expected.jsonl to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

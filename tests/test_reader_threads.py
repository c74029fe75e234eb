"""PDFium is not thread-safe: the daemon reads mails in threads when it has no worker pool,
so readers in several threads of one process must never call PDFium at the same time.

A CI run crashed with a segmentation fault inside pypdfium2 while two daemons of one test read
notices in their threads. The readers here run in a child process, so a crash fails this test
instead of killing the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import sys
    import threading

    from mailbot.samples.catalog import all_samples
    from parsers import InlineRunner, Limits, Reader

    names = ["ejcs_cid", "two_pdfs", "rotate_90", "spaced_values_tj_cid",
             "ejcs_ttf_letterspaced", "wjcs_table"]
    samples = [s for s in all_samples() if s.name in names]
    limits = Limits()
    reader = Reader(InlineRunner(limits), limits)
    want = {s.name: reader.read_bytes(s.data, s.name, s.filename).to_json_obj() for s in samples}
    failures = []
    start = threading.Barrier(4)

    def read_all(rounds):
        start.wait()
        for _ in range(rounds):
            for s in samples:
                got = Reader(InlineRunner(limits), limits).read_bytes(s.data, s.name, s.filename)
                if got.to_json_obj() != want[s.name]:
                    failures.append(s.name)

    threads = [threading.Thread(target=read_all, args=(int(sys.argv[1]),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(len(samples), "samples;", len(failures), "differed")
    sys.exit(1 if failures or len(samples) < 3 else 0)
    """
)


def test_readers_in_four_threads_read_as_one_and_do_not_crash():
    run = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CHILD, "15"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "0 differed" in run.stdout

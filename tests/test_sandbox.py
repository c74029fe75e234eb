"""PDF reading in limited worker processes: bombs and hangs cost one attachment, not the caller."""

import os
import time
from dataclasses import replace

import pytest

from mailbot.samples.notice_pdf import render_notice_pdf
from mailbot.samples.special_pdfs import render_decompression_bomb_pdf, render_slow_pdf
from parsers import Limits, PdfPool, Reader

from .notices import FIELDS


@pytest.fixture(scope="module")
def pool():
    with PdfPool(workers=2, limits=replace(Limits(), pdf_timeout_s=2.0)) as pool:
        yield pool


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time a process has used, in clock ticks (0 once it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def read_pdf(pool, data, name="a.pdf"):
    return Reader(pool, pool.limits).read_bytes(data, name, name)


def test_decompression_bomb_is_stopped_within_its_memory_limit(pool):
    bomb = render_decompression_bomb_pdf()
    assert len(bomb) < 4096
    started = time.monotonic()
    result = read_pdf(pool, bomb, "bomb.pdf")
    assert time.monotonic() - started < 5
    assert [(p.code, p.origin) for p in result.problems] == [
        ("attachment_too_large", "file:bomb.pdf")
    ]


def test_slow_pdf_times_out_and_the_pool_keeps_working(pool):
    result = read_pdf(pool, render_slow_pdf(), "slow.pdf")
    assert [p.code for p in result.problems] == ["read_timeout"]
    # The killed worker is replaced: the next document is read normally.
    good = read_pdf(pool, render_notice_pdf(FIELDS), "ok.pdf")
    assert [n.auth_key for n in good.notices] == ["Z28YUEAJ38ux"] and good.problems == []


def test_workers_are_reused_across_documents(pool):
    data = render_notice_pdf(FIELDS)
    pids = set()
    for _ in range(6):
        future = pool._pool.schedule(__import__("os").getpid)
        pids.add(future.result())
        assert read_pdf(pool, data).notices
    assert len(pids) <= 2


def _pid_held(seconds: float) -> int:
    """In a worker: its pid, after holding the worker so that the next task goes to another."""
    time.sleep(seconds)
    return os.getpid()


def both_workers(pool) -> set[int]:  # noqa: ANN001
    """The pids of both workers: one idle worker may take every quick task, so each round
    holds both with a task at once (the slow PDF must land on a worker we watch)."""
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < 2:
        assert time.monotonic() < deadline, f"only workers {pids} answered within 60 s"
        futures = [pool._pool.schedule(_pid_held, args=(0.2,)) for _ in range(2)]
        pids |= {f.result() for f in futures}
    return pids


def test_a_worker_stopped_by_sigterm_gives_no_verdict(pool):
    import os
    import signal

    from parsers.sandbox import WorkerStopped

    pids = both_workers(pool)
    before = {pid: _cpu_ticks(pid) for pid in pids}
    slow = pool.submit(render_slow_pdf(), "slow.pdf")
    # Stop the workers only once one of them is busy with the slow document.
    deadline = time.monotonic() + 60
    while not any(_cpu_ticks(pid) - ticks >= 20 for pid, ticks in before.items()):
        assert time.monotonic() < deadline, "no worker started on the slow PDF within 60 s"
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)  # as a service manager stopping the group would
        except ProcessLookupError:
            pass
    with pytest.raises(WorkerStopped):
        Reader(pool, pool.limits)._result(slow, "attachment:slow.pdf")

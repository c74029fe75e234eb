"""`Reader.read_many` with a worker pool reads each source whole in a worker (issue 15: every
core parses mail, not only PDFs); a source whose whole reading fails there is read again PDF
by PDF in the sandbox and gets the usual verdicts."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from email.utils import formatdate

import pytest

from mailbot.samples.catalog import all_samples
from mailbot.samples.mails import Envelope, attachment_part, mail_with_attachments
from mailbot.samples.notice_pdf import render_notice_pdf
from mailbot.samples.special_pdfs import render_decompression_bomb_pdf, render_slow_pdf
from parsers import InlineRunner, Limits, PdfPool, Reader
from parsers.sandbox import WorkerStopped

from .notices import FIELDS
from .test_sandbox import _cpu_ticks

NAMES = ["ejcs_cid", "two_pdfs", "zip_cp932", "forwarded", "body_shift_jis", "encrypted_pdf",
         "image_only", "rotate_90", "spaced_values_tj_cid", "office_beside_pdf"]


@pytest.fixture(scope="module")
def pool():
    with PdfPool(workers=2, limits=replace(Limits(), pdf_timeout_s=2.0)) as pool:
        yield pool


def written(tmp_path, samples):
    paths = []
    for s in samples:
        path = tmp_path / s.filename
        path.write_bytes(s.data)
        paths.append(path)
    return paths


def test_whole_sources_in_workers_read_as_inline(pool, tmp_path):
    samples = all_samples(NAMES)
    paths = written(tmp_path, samples)
    inline = Reader(InlineRunner(pool.limits), pool.limits)
    want = [inline.read_bytes(p.read_bytes(), str(p), p.name).to_json_obj() for p in paths]
    got = [r.to_json_obj() for r in Reader(pool, pool.limits).read_many(paths)]
    assert got == want


def mail_with(tmp_path, name, *pdfs):
    env = Envelope("info@maru-kensetsu.example.jp", "keiyaku@issuer.example.jp",
                   "【電子保証】提出", formatdate(localtime=True),
                   f"<{name}@maru-kensetsu.example.jp>")
    parts = [attachment_part(data, filename) for filename, data in pdfs]
    path = tmp_path / name
    path.write_bytes(mail_with_attachments(env, "お世話になっております。", parts, tag=name))
    return path


def test_a_source_that_times_out_whole_gets_its_per_pdf_verdicts(pool, tmp_path):
    path = mail_with(tmp_path, "slow.eml", ("notice.pdf", render_notice_pdf(FIELDS)),
                     ("slow.pdf", render_slow_pdf()))
    (result,) = Reader(pool, pool.limits).read_many([path])
    assert [n.auth_key for n in result.notices] == [FIELDS.auth_key]
    assert [(p.code, p.origin) for p in result.problems] == [("read_timeout",
                                                              "attachment:slow.pdf")]


def test_a_bomb_in_a_mail_is_too_large_after_the_worker_died(pool, tmp_path):
    path = mail_with(tmp_path, "bomb.eml", ("bomb.pdf", render_decompression_bomb_pdf()))
    (result,) = Reader(pool, pool.limits).read_many([path])
    assert [(p.code, p.origin) for p in result.problems] == [("attachment_too_large",
                                                              "attachment:bomb.pdf")]




def test_a_worker_stopped_while_reading_a_whole_source_gives_no_verdict(tmp_path):
    path = mail_with(tmp_path, "slow.eml", ("slow.pdf", render_slow_pdf()))
    with PdfPool(workers=1, limits=replace(Limits(), pdf_timeout_s=60.0)) as pool:
        pid = pool._pool.schedule(os.getpid).result()
        before = _cpu_ticks(pid)

        def stop_when_busy() -> None:
            deadline = time.monotonic() + 60
            while _cpu_ticks(pid) - before < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(pid, signal.SIGTERM)  # as a service manager stopping the group would

        stopper = threading.Thread(target=stop_when_busy)
        stopper.start()
        try:
            with pytest.raises(WorkerStopped):
                list(Reader(pool, pool.limits).read_many([path]))
        finally:
            stopper.join()

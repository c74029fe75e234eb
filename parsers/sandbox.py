"""Run PDF reading where a hostile file cannot hurt the caller (docs/reliability.md).

pdfminer has open hang and decompression-bomb issues, so every PDF is read in a worker
process with an address-space limit and a wall-clock timeout. `PdfPool` keeps a few workers
alive across documents (pebble kills and replaces a worker that times out or dies);
`InlineRunner` reads in the calling process with no limits, for trusted input and for
measuring the pool's overhead in `bench/`. Both return futures of `PdfReading`. A worker
that dies reading a document (PDFium aborts on memory exhaustion where pdfminer raises) is
replaced and the document read once more with pdfminer alone (`pdfread.PDFMINER`).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import weakref
from collections.abc import Callable
from concurrent.futures import Future, TimeoutError
from typing import Protocol, TypeVar

from pebble import ProcessExpired, ProcessPool

from .limits import Limits
from .model import Problem
from .pdfread import PDFMINER, PdfReading, read_pdf

STOPPED_EXIT = 143  # 128 + SIGTERM
T = TypeVar("T")


class WorkerStopped(RuntimeError):
    """The PDF worker was stopped from outside (SIGTERM): no verdict on the document."""


def _exit_stopped(_signum: int, _frame: object) -> None:
    os._exit(STOPPED_EXIT)


class PdfRunner(Protocol):
    def submit(self, data: bytes, origin: str) -> Future[PdfReading]: ...

    def result(self, future: Future[PdfReading], origin: str) -> PdfReading: ...

    def close(self) -> None: ...


def _limit_memory(extra_bytes: int) -> None:
    """Worker start: cap the address space at what the worker has now plus `extra_bytes`."""
    import pdfplumber  # noqa: F401  (import before measuring: the libraries are not the budget)
    import pypdfium2  # noqa: F401

    # A Ctrl-C reaches the whole process group: the caller decides when workers stop,
    # and a worker killed mid-document must not turn into a verdict on that document.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A SIGTERM (a service manager stopping the whole group) ends the worker with a code
    # the caller recognises: the document was not judged, it must be read again later.
    signal.signal(signal.SIGTERM, _exit_stopped)
    with open(f"/proc/{os.getpid()}/statm") as statm:
        vm_pages = int(statm.read().split()[0])
    baseline = vm_pages * os.sysconf("SC_PAGE_SIZE")
    limit = baseline + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class PdfPool:
    """Worker processes reused across documents, each limited in memory and time."""

    def __init__(self, workers: int = 2, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["parsers.pdfread", "pdfplumber", "pypdfium2"])
        self._pool = ProcessPool(
            max_workers=max(1, workers),
            initializer=_limit_memory,
            initargs=(self.limits.pdf_memory_bytes,),
            context=context,
        )
        # Each document, kept for a retry until its result is read (or the future dropped).
        self._inputs: weakref.WeakKeyDictionary[Future[PdfReading], bytes] = (
            weakref.WeakKeyDictionary())

    def submit(self, data: bytes, origin: str) -> Future[PdfReading]:
        future: Future[PdfReading] = self._pool.schedule(
            read_pdf,
            args=(data, origin, self.limits.max_pdf_pages),
            timeout=self.limits.pdf_timeout_s,
        )
        self._inputs[future] = data
        return future

    def result(self, future: Future[PdfReading], origin: str) -> PdfReading:
        data = self._inputs.pop(future, None)
        try:
            return future.result()
        except TimeoutError:
            detail = f"reading the PDF took longer than {self.limits.pdf_timeout_s:g} s"
            return PdfReading(problems=[Problem("read_timeout", origin, detail)])
        except MemoryError:
            detail = "reading the PDF needs more memory than the reader allows (a decompression bomb?)"
            return PdfReading(problems=[Problem("attachment_too_large", origin, detail)])
        except ProcessExpired as exc:
            if exc.exitcode == STOPPED_EXIT:
                raise WorkerStopped(f"the PDF worker for {origin} was stopped") from exc
            if data is not None:
                # PDFium aborts the process where pdfminer raises (memory exhaustion above
                # all): read the document again with pdfminer alone, once.
                retry: Future[PdfReading] = self._pool.schedule(
                    read_pdf,
                    args=(data, origin, self.limits.max_pdf_pages, PDFMINER),
                    timeout=self.limits.pdf_timeout_s,
                )
                return self.result(retry, origin)
            detail = f"the PDF reader process died (exit code {exc.exitcode})"
            return PdfReading(problems=[Problem("unreadable_attachment", origin, detail)])

    def submit_call(self, fn: Callable[..., T], *args: object) -> Future[T]:
        """Run `fn(*args)` in a worker under the same memory limit and timeout: the reader
        reads a whole source this way (`Reader.read_many`)."""
        future: Future[T] = self._pool.schedule(fn, args=args, timeout=self.limits.pdf_timeout_s)
        return future

    def call_result(self, future: Future[T]) -> T:
        """The call's result; its failure raised as it came, a stopped worker as
        `WorkerStopped`."""
        try:
            return future.result()
        except ProcessExpired as exc:
            if exc.exitcode == STOPPED_EXIT:
                raise WorkerStopped("the reader's worker was stopped") from exc
            raise

    def close(self) -> None:
        # pebble ships py.typed but leaves `stop()` unannotated (it takes and returns nothing).
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join()

    def __enter__(self) -> PdfPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineRunner:
    """Reads in the caller's process: no isolation, no limits beyond the page count."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def submit(self, data: bytes, origin: str) -> Future[PdfReading]:
        future: Future[PdfReading] = Future()
        try:
            future.set_result(read_pdf(data, origin, self.limits.max_pdf_pages))
        except Exception as exc:  # in the future, as from the pool: the reader's verdict
            future.set_exception(exc)
        return future

    def result(self, future: Future[PdfReading], origin: str) -> PdfReading:
        return future.result()

    def close(self) -> None:
        pass

    def __enter__(self) -> InlineRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

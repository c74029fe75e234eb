"""Loaded only by `scripts/test` for its runs under Debian's `faketime` (see scripts/test).

libfaketime 0.9.10 (Debian 12) must leave the monotonic clock alone here
(DONT_FAKE_MONOTONIC=1): Python waits on locks and events with sem_clockwait on
CLOCK_MONOTONIC, which that version does not intercept, so a faked monotonic clock makes
every timed wait last as long as the clock offset. With the monotonic clock left alone,
its clock_nanosleep wrapper still shifts absolute monotonic deadlines and `time.sleep`
fails with EINVAL. This puts `time.sleep` on `select()`, which libfaketime leaves alone;
nothing else changes, and the wall clock (time.time, datetime.now) stays faked.
"""

from __future__ import annotations

import os
import select
import time

if os.environ.get("FAKETIME") and "faketime" in os.environ.get("LD_PRELOAD", ""):

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            select.select([], [], [], left)

    time.sleep = _sleep

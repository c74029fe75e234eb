"""Retention: raw mail and rendered mail, which hold clear 認証キー, purged after `raw_days`.

`purge()` removes, for rows older than `[retention] raw_days` (`mailbot/config/retention.py`):

- the spool files of decided and replied messages (`mailbot/ledger/purge.py`: a file several
  rows share goes only when every one of them is eligible; quarantined and undecided mail —
  received, processing — is never purged, nor any copy sharing its file);
- the bodies of sent and cancelled outbox rows (`mailbot/outbox/purge.py`).

Rows stay, with `purged_at` set: decisions (keys masked), the audit trail, the outbox's
recipients and Message-IDs. `dry_run` lists what would go and removes nothing. The clock
is a parameter. The daemon runs `daily_job` once a day; `mailbot purge` runs it by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mailbot.config import Config
from mailbot.ledger import RawStore, spool_for
from mailbot.ledger import purge as ledger_purge
from mailbot.outbox import purge as outbox_purge
from mailbot.store import Store

log = logging.getLogger("mailbot.retention")


@dataclass
class PurgeReport:
    cutoff: datetime
    dry_run: bool
    files: list[ledger_purge.SpoolFile] = field(default_factory=list)  # removed / would be
    kept: list[ledger_purge.SpoolFile] = field(default_factory=list)  # a new row needed it
    bodies: list[outbox_purge.OutboxBody] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What `mailbot purge` prints: one line per file and body, then the counts."""
        verb = "would remove" if self.dry_run else "removed"
        out = [f"{verb} spool {f.name} (ledger rows {', '.join(map(str, f.rows))}; "
               f"received {f.received_at:%Y-%m-%d})" for f in self.files]
        out += [f"kept spool {f.name}: a message received meanwhile uses it" for f in self.kept]
        out += [f"{verb} outbox body {b.id} ({b.kind}, {b.state} {b.done_at:%Y-%m-%d}, "
                f"{b.size} bytes)" for b in self.bodies]
        out.append(f"{verb} {len(self.files)} spool file(s) and {len(self.bodies)} outbox "
                   f"body(ies) older than {self.cutoff:%Y-%m-%d %H:%M} UTC")
        return out


def purge(config: Config, store: Store, now: datetime, *, dry_run: bool = False,
          spool: RawStore[Any] | None = None) -> PurgeReport:
    """Purge what `[retention] raw_days` lets go at `now`."""
    cutoff = now - timedelta(days=config.retention.raw_days)
    spool = spool or spool_for(config, store)
    report = PurgeReport(cutoff, dry_run)
    with store.engine.connect() as conn:
        files = ledger_purge.purgeable(conn, cutoff)
        bodies = outbox_purge.purgeable(conn, cutoff)
    if dry_run:
        report.files, report.bodies = files, bodies
        return report
    for file in files:
        if ledger_purge.purge_file(store.engine, spool, file, cutoff, now):
            report.files.append(file)
        else:
            report.kept.append(file)
    with store.engine.begin() as conn:
        outbox_purge.purge_bodies(conn, [b.id for b in bodies], cutoff, now)
    report.bodies = bodies
    return report


def daily_job(config: Config, store: Store, clock: Callable[[], datetime]) -> Callable[[], None]:
    """The daemon's scheduled purge: logs what it removed; a failure is logged and tried
    again the next day."""
    def run() -> None:
        try:
            report = purge(config, store, clock())
        except Exception:
            log.exception("the retention purge failed; it runs again tomorrow")
            return
        if report.files or report.bodies:
            log.info("retention: purged %d spool file(s) and %d outbox body(ies) older than %s",
                     len(report.files), len(report.bodies), f"{report.cutoff:%Y-%m-%d}")
    return run

"""`mailbot status --check`: one summary line and a Nagios-style exit code for monitoring.

0 OK, 1 WARNING, 2 CRITICAL. Four figures (five when the cluster has a problem), each against its `[check]` thresholds
(`mailbot/config/check.py`):

- **waiting**: minutes since the oldest message not yet decided (received, processing) came
  in (`mailbot.ledger.oldest_waiting`);
- **quarantined**: messages the pipeline gave up on (`mailbot.backlog`, stuck);
- **failed**: outgoing mail that failed for good plus replies that could not be rendered
  (`mailbot.backlog`, stuck);
- **sources down**: an IMAP source whose last error is newer than its last good sync, for
  the minutes since that sync (`mailbox_state`, `mailbot.ledger.source_states`); one that
  never synced and keeps failing is at least WARNING, for want of a moment to count from;
- **cluster problems** (only when there are, WARNING): messages whose claim ran out with
  nobody to take them back, outgoing mail claimed by a node that stopped, and configured
  IMAP mailboxes no live node watches while some node is alive
  (`mailbot.cluster.view.cluster_report`, docs/cluster.md).

A store that cannot be opened or read is CRITICAL (2), not UNKNOWN (3): monitoring must page
when the database is gone, and mailbot cannot work without it. The line ends with Nagios
performance data (`| waiting_minutes=42;30;120 …`). The clock is a parameter (`now`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.engine import Connection

from mailbot.backlog import DNS_WAIT, backlogs
from mailbot.config import CheckConfig
from mailbot.ledger import oldest_waiting, source_states

OK, WARNING, CRITICAL = 0, 1, 2
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}


@dataclass(frozen=True)
class Figure:
    """One figure of the check and its level."""

    text: str  # e.g. "oldest waiting 42 min (warn 30)"
    level: int
    perf: str  # Nagios performance data, e.g. "waiting_minutes=42;30;120"


@dataclass(frozen=True)
class CheckReport:
    code: int
    figures: tuple[Figure, ...]

    @property
    def line(self) -> str:
        """``MAILBOT WARNING - oldest waiting 42 min (warn 30); quarantined 0; … | perf``."""
        return (f"MAILBOT {LABELS[self.code]} - " + "; ".join(f.text for f in self.figures)
                + " | " + " ".join(f.perf for f in self.figures))


def _level(value: int, warn: int, crit: int) -> int:
    return CRITICAL if value >= crit else WARNING if value >= warn else OK


def _figure(label: str, value: int, unit: str, warn: int, crit: int, perf: str) -> Figure:
    level = _level(value, warn, crit)
    why = {OK: "", WARNING: f" (warn {warn})", CRITICAL: f" (crit {crit})"}[level]
    return Figure(f"{label} {value}{unit}{why}", level, f"{perf}={value};{warn};{crit}")


def _minutes(now: datetime, since: datetime) -> int:
    return max(0, int((now - since).total_seconds() // 60))


def check(conn: Connection, thresholds: CheckConfig, now: datetime,
          sources: Collection[str] | None = None,
          cluster: Collection[str] = ()) -> CheckReport:
    """The check at `now`; `sources` are the mailboxes whose sync state counts (the
    configured IMAP ones), None: every mailbox with a sync state. `cluster` are the
    problems `mailbot.cluster.view.cluster_report` found (a figure only when there are)."""
    t = thresholds
    oldest = oldest_waiting(conn)
    waiting = 0 if oldest is None else _minutes(now, oldest)
    parts = list(backlogs(conn).values())
    stuck = [b.stuck for b in parts]
    # Mail waiting for DNS (a `temperror`) is waiting too; the line says so, so whoever is
    # paged looks at the resolver rather than the pipeline.
    dns = sum(b.waiting.get(DNS_WAIT, 0) for b in parts)
    quarantined = sum(s.get("quarantined", 0) for s in stuck)
    failed = sum(s.get("mail failed", 0) + s.get("replies not rendered", 0) for s in stuck)
    oldest_figure = _figure("oldest waiting", waiting, " min", t.waiting_warn_minutes,
                            t.waiting_crit_minutes, "waiting_minutes")
    if dns:
        oldest_figure = replace(oldest_figure,
                                text=f"{oldest_figure.text} ({dns} waiting for DNS)")
    figures = [
        oldest_figure,
        _figure("quarantined", quarantined, "", t.quarantined_warn, t.quarantined_crit,
                "quarantined"),
        _figure("failed mail", failed, "", t.failed_warn, t.failed_crit, "failed"),
    ]
    down: list[Figure] = []
    for state in source_states(conn):
        if (sources is not None and state.mailbox not in sources) or not state.failing:
            continue
        since = state.down_since
        if since is None:
            down.append(Figure(f"source {state.mailbox} never synced", WARNING, ""))
            continue
        figure = _figure(f"source {state.mailbox} down", _minutes(now, since), " min",
                         t.source_down_warn_minutes, t.source_down_crit_minutes, "")
        if figure.level:
            down.append(figure)
    worst = max((f.level for f in down), default=OK)
    figures.append(Figure(f"sources down {len(down)}" + "".join(f", {f.text}" for f in down),
                          worst, f"sources_down={len(down)}"))
    if cluster:  # claims nobody took back, mail a dead node was sending, unwatched mailboxes
        figures.append(Figure(f"cluster problems {len(cluster)}: " + "; ".join(cluster),
                              WARNING, f"cluster_problems={len(cluster)}"))
    return CheckReport(max(f.level for f in figures), tuple(figures))


def unreachable(error: BaseException | str, what: str = "store unreachable") -> CheckReport:
    """The report when the store cannot be opened or read (or the configuration is wrong):
    CRITICAL, with the error's first line."""
    text = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
    return CheckReport(CRITICAL, (Figure(f"{what}: {text}", CRITICAL, "store_up=0"),))


def status_check(config_path: str | None, store_arg: str | None, now: datetime) -> CheckReport:
    """`mailbot status --check`: load the configuration, open the store, check. A mistake in
    the configuration, or a store that cannot be opened or read, is CRITICAL; so is one that
    is not there or not at this release's schema. The check only reads: it never creates a
    database or a secret, nor migrates."""
    from sqlalchemy import create_engine

    from mailbot.config import load_config
    from mailbot.errors import UsageError
    from mailbot.store import resolve_store_url
    from mailbot.store.existing import absent, schema_problem

    try:
        config = load_config(config_path)
    except UsageError as exc:
        return unreachable(exc, "configuration")
    url = resolve_store_url(store_arg, config.store_url)
    missing = absent(url)
    if missing is not None:  # opening it would create an empty store and call it healthy
        return unreachable(f"no database at {missing}")
    # Read only: no secret (none is created), no migration; an unmigrated store is reported.
    try:
        engine = create_engine(url)
    except Exception as exc:  # no driver for it
        return unreachable(exc)
    sources = {m.name for m in config.mailboxes if m.kind == "imap"} if config.mailboxes else None
    try:
        problem = schema_problem(engine)
        if problem is not None:
            return unreachable(problem)
        from mailbot.cluster.view import cluster_report

        cluster = cluster_report(engine, sorted(sources or ()))["problems"]
        with engine.connect() as conn:
            return check(conn, config.check, now, sources, cluster)
    except Exception as exc:  # the database is down or refuses us
        return unreachable(exc)
    finally:
        engine.dispose()

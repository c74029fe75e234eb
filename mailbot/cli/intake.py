"""`mailbot run`, `status`, `replay` and `quarantine`: the intake daemon and its ledger."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..auth import AuthVerdict
from ..config import Config, load_config
from ..errors import UsageError
from ..ledger import Ledger, spool_for
from ..store import Store
from ..submit import table
from ..systemd import notify
from .options import (
    Commands,
    add_config_and_store,
    existing_file,
    open_store,
    parse_date_arg,
    row_id,
)

if TYPE_CHECKING:
    from parsers import Reader

    from ..config import MailboxConfig
    from ..pipeline.facts import MailFacts
    from ..pipeline.records import DecisionRecord


def register(commands: Commands) -> None:
    run = commands.add_parser("run", help="run the intake daemon (sources, pipeline, scheduler)")
    add_config_and_store(run)
    run.add_argument("--since", metavar="DATE", help="backfill IMAP mail received since DATE")
    run.add_argument("--reply-to-backfill", action="store_true",
                     help="also reply to the backfilled mail (default: decide, do not reply)")
    run.add_argument("--workers", type=int, default=2, help="PDF reader processes (default 2)")
    run.set_defaults(func=run_daemon, default_log_level="INFO")

    status = commands.add_parser("status", help="per-mailbox counts, backlog and last error")
    add_config_and_store(status)
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.add_argument("--check", action="store_true",
                        help="for monitoring: one summary line, exit 0 OK, 1 WARNING, "
                             "2 CRITICAL (thresholds from [check])")
    status.set_defaults(func=run_status)

    replay = commands.add_parser("replay", help="decide .eml files with no servers involved")
    add_config_and_store(replay)
    replay.add_argument("paths", nargs="+", metavar="PATH", help=".eml files (e.g. spool/*.eml)")
    replay.add_argument("--mailbox", help="decide as if received by this mailbox "
                        "(default: the first issuer mailbox)")
    replay.add_argument("--json", action="store_true", help="one decision record per line")
    replay.set_defaults(func=run_replay)

    quarantine = commands.add_parser("quarantine", help="messages the pipeline could not decide")
    sub = quarantine.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    for action, text in (("list", "list quarantined messages"),
                         ("show", "show one with its traceback"),
                         ("retry", "put one back in line with fresh attempts")):
        cmd = sub.add_parser(action, help=text)
        add_config_and_store(cmd)
        if action != "list":
            cmd.add_argument("id", type=row_id, metavar="ID",
                             help="the ledger id (mailbot quarantine list)")
        cmd.set_defaults(func=run_quarantine)


def _open(args: argparse.Namespace) -> tuple[Config, Store, Ledger]:
    config = load_config(args.config)
    store = open_store(args, config)
    return config, store, Ledger(store.engine, spool_for(config, store))


def run_daemon(args: argparse.Namespace) -> int:
    from ..daemon import Daemon

    notify("STATUS=opening the store (migrating it if needed)")
    config, store, _ledger = _open(args)
    if not config.mailboxes:
        raise UsageError(f"{args.config}: no [[mailboxes]] to watch")
    since = parse_date_arg(args.since, "--since") if args.since else None
    daemon = Daemon(config, store, workers=args.workers, since=since,
                    reply_to_backfill=True if args.reply_to_backfill else None)

    def stop(signum: int, _frame: object) -> None:
        # No logging and no locks here: the signal may interrupt a thread holding them.
        daemon.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console = None
    try:
        daemon.start()
        if config.web.run_with_daemon:
            from ..web.server import Background

            console = Background(config, store)
            console.start()
        notify("READY=1", "STATUS=running: mailboxes "
               + ", ".join(m.name for m in config.mailboxes))
        daemon.run()
    finally:
        notify("STOPPING=1", "STATUS=stopping")
        if console is not None:
            console.stop()
        daemon.shutdown()
        store.close()
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Per mailbox: the ledger's counts, the backlog (what waits and what is stuck, replies
    and outgoing mail included) and the last error; then the submissions and a total."""
    from ..backlog import OUTGOING, backlogs, total
    from ..cluster.view import cluster_report, report_lines
    from ..ledger.sync import source_states

    if args.check:
        from ..checks import status_check

        checked = status_check(args.config, args.store, datetime.now(UTC))
        print(checked.line)
        return checked.code
    config, store, ledger = _open(args)
    try:
        counts = ledger.counts()
        with store.engine.connect() as conn:
            states = {state.mailbox: state for state in source_states(conn)}
            submitted = table.counts(conn)
            waiting = backlogs(conn)
        cluster = cluster_report(store.engine,
                                 [m.name for m in config.mailboxes if m.kind == "imap"])
    finally:
        store.close()
    configured = [m.name for m in config.mailboxes]
    others = sorted((set(counts) | set(waiting)) - set(configured) - {OUTGOING})
    report: dict[str, Any] = {}
    for mailbox in configured + others:
        state = states.get(mailbox)
        backlog = waiting.get(mailbox)
        report[mailbox] = {
            "counts": counts.get(mailbox, {}),
            **(backlog.to_json() if backlog else {"backlog": 0, "waiting": {}, "stuck": {}}),
            "last_sync": state.last_sync_at.isoformat() if state and state.last_sync_at else None,
            "last_error": state.last_error if state else None,
            "last_error_at": state.last_error_at.isoformat()
            if state and state.last_error_at else None,
        }
    whole = total(waiting)
    if args.json:
        extra: dict[str, Any] = {"submissions": submitted} if submitted else {}
        if OUTGOING in waiting:
            extra[OUTGOING] = waiting[OUTGOING].to_json()
        if cluster["leases"]:
            extra["(cluster)"] = cluster
        print(json.dumps({**report, **extra, "(total)": whole.to_json()}, ensure_ascii=False))
        return 0
    if submitted:
        print("submissions: " + ", ".join(f"{k} {v}" for k, v in sorted(submitted.items())))
    for mailbox, info in report.items():
        counts_text = ", ".join(f"{k} {v}" for k, v in sorted(info["counts"].items())) or "empty"
        backlog_text = waiting[mailbox].text() if mailbox in waiting else "backlog 0"
        print(f"{mailbox}: {counts_text}; {backlog_text}")
        if info["last_sync"]:
            print(f"  last sync {info['last_sync']}")
        if info["last_error"]:
            print(f"  last error {info['last_error_at']}: {info['last_error']}")
    if OUTGOING in waiting:
        print(f"outgoing mail of no received message (digests, alerts): {waiting[OUTGOING].text()}")
    print(f"total: {whole.text()}")
    for line in report_lines(cluster):
        print(line)
    return 0


def run_replay(args: argparse.Namespace) -> int:
    from parsers import PdfPool, Reader

    from ..pipeline.decide import decide
    from ..pipeline.facts import mail_facts

    config = load_config(args.config)
    issuers = [m for m in config.mailboxes if m.role == "issuer"]
    if args.mailbox:
        mailbox = config.mailbox(args.mailbox)
    elif issuers:
        mailbox = issuers[0]
    else:
        raise UsageError(f"{args.config}: no issuer mailbox to replay against (use --mailbox)")
    for path in args.paths:
        existing_file(path)
    store = open_store(args, config)
    worst = 0
    try:
        with PdfPool(2) as pool:
            reader = Reader(pool, pool.limits)
            for path in args.paths:
                raw = Path(path).read_bytes()
                facts = mail_facts(raw, mailbox.name)
                if mailbox.role == "contractor":
                    worst = max(worst, _replay_contractor(path, raw, facts, mailbox, config,
                                                          store, reader, args.json))
                    continue
                decision = decide(raw, facts, mailbox, config, store, reader,
                                  datetime.now(UTC), dry_run=True)
                worst = max(worst, 0 if decision.status == "verified" else 1)
                _print_decision(path, decision.record, args.json)
    finally:
        store.close()
    return worst


def _replay_contractor(path: str, raw: bytes, facts: MailFacts, mailbox: MailboxConfig,
                       config: Config, store: Store, reader: Reader, as_json: bool) -> int:
    """What the contractor side would do with this mail: plans and answers, nothing written."""
    from ..outgoing import outbox_for
    from ..pipeline.contractor import decide_contractor

    record, writes = decide_contractor(raw, facts, mailbox, config, store, reader,
                                       outbox_for(config, store), 0, datetime.now(UTC))
    record["plans"] = [plan.summary() for plan in writes.plans]
    with store.engine.connect() as conn:  # what a real decision would find already there
        for plan, summary in zip(writes.plans, record["plans"], strict=True):
            earlier = table.by_notice(conn, plan.notice_hash)
            if earlier is not None and earlier.state != "unroutable":
                summary["state"] = f"duplicate of submission {earlier.id} ({earlier.state})"
    record["answers"] = [{"submission": m.row.id, "guarantee_number": m.row.guarantee_number,
                          "verdict": m.verdict, "matched_by": m.how} for m in writes.answers]
    if as_json:
        print(json.dumps({"source": path, **record}, ensure_ascii=False, default=str))
    else:
        # Nothing is written: the contractor side "would record" what a run records.
        status = "would record" if record["status"] == "recorded" else record["status"]
        print(f"{path}: {status}" + (f" ({record['reason']})" if record.get("reason") else ""))
        for shown in record["plans"]:
            target = shown["to"] or "-"
            print(f"  notice  {shown['guarantee_number']}: {shown['state']} → {target}"
                  f" [{shown['subject'] or shown['reason']}]")
            for line in shown["trail"]:
                print(f"          {line}")
        for item in record["answers"]:
            print(f"  answer  submission {item['submission']} ({item['guarantee_number']}): "
                  f"{item['verdict']} by {item['matched_by']}")
        if record["answers"]:
            # replay checks no sender: an issuer's real answer shows as unauthenticated here
            print("  auth    not checked by replay: an answer counts as unauthenticated unless "
                  "its issuer's auth is none (mailbot run checks DKIM/DMARC)")
    bad = any(p["state"] == "unroutable" for p in record["plans"]) or record["status"] == "no_notice"
    return 1 if bad else 0


def _print_decision(path: str, record: DecisionRecord, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"source": path, **record}, ensure_ascii=False, default=str))
        return
    print(f"{path}: {record['status']} ({', '.join(record['outcomes']) or 'no verification'})")
    for notice in record["notices"]:
        print(f"  notice  {notice['guarantee_number']} {notice['auth_key']} [{notice['origin']}]")
    for problem in record["problems"]:
        print(f"  problem {problem['code']} {problem['origin']}")
    for route in record["routing"]["routes"]:
        if route["matched"]:
            print(f"  route   {route['route']}: {'; '.join(route['why'])}")
    for result in record["verification"]:
        hits = [r["rule"] for r in result["rules"] if r["hit"]]
        print(f"  verify  {result['guarantee_number']}: {', '.join(result['outcomes'])}"
              + (f" (rules hit: {', '.join(hits)})" if hits else ""))
    stored = record.get("authentication")
    print("  auth    " + (AuthVerdict.from_json_obj(stored).summary() if stored else "not checked"))
    print(f"  folder  {record['folder']}; reply: "
          + (record["reply"]["template"] if record["reply"] else f"none ({record['reply_skipped']})"))


def run_quarantine(args: argparse.Namespace) -> int:
    _config, store, ledger = _open(args)
    try:
        if args.quarantine_command == "list":
            for listed in ledger.entries(state="quarantined"):
                print(f"{listed.id}\t{listed.mailbox}\t{listed.received_at:%Y-%m-%d %H:%M}\t"
                      f"{listed.sender or '-'}\t{listed.subject or '-'}")
            return 0
        entry = ledger.get(args.id)
        if entry is None or entry.state != "quarantined":
            print(f"mailbot quarantine: ledger entry {args.id} is not quarantined", file=sys.stderr)
            return 1
        if args.quarantine_command == "show":
            print(f"id {entry.id}  mailbox {entry.mailbox}  attempts {entry.attempts}")
            print(f"message-id {entry.message_id}\nfrom {entry.sender}\nsubject {entry.subject}")
            purged = f" (purged on {entry.purged_at:%Y-%m-%d})" if entry.purged_at else ""
            print(f"spool {ledger.spool.location(entry.spool_name)}{purged}\n\n{entry.last_error}")
            return 0
        ledger.retry(entry.id)
        print(f"ledger entry {entry.id} is back in line; the running daemon will decide it")
        return 0
    finally:
        store.close()

"""`mailbot outbox list|retry|cancel`: what mailbot sent, is sending, or gave up on."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ..config import load_config
from ..outbox import STATES, OutboxRow
from ..outgoing import outbox_for
from ..store import Store, resolve_store_url
from .options import Commands, add_action, add_list


def register(commands: Commands) -> None:
    outbox = commands.add_parser("outbox", help="outgoing mail: list, retry or cancel")
    sub = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)

    add_list(sub, "outbox rows", STATES, run_outbox)

    for action, text in (("retry", "put a failed row back in line with a new deadline"),
                         ("cancel", "never send a queued or failed row")):
        cmd = add_action(sub, action, text, run_outbox)
        cmd.add_argument("id", type=int, metavar="ID")
        cmd.add_argument("--request", action="store_true",
                         help="ID is a reply request that could not be rendered (listed as "
                              "'request ID'): render it again, or never send it")


def _row_dict(row: OutboxRow) -> dict[str, object]:
    data = {name: getattr(row, name) for name in OutboxRow.__dataclass_fields__ if name != "raw"}
    for name, value in data.items():
        if isinstance(value, datetime):
            data[name] = value.isoformat()
    return data


def run_outbox(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = Store.open(resolve_store_url(args.store, config.store_url))
    # Listing, retrying and cancelling never send; the windows give a retried row its deadline.
    outbox = outbox_for(config, store)
    try:
        if args.outbox_command == "list":
            rows = outbox.rows(args.state)
            tz = ZoneInfo(outbox.window.tz)  # times as the clerks read them (JST)
            if args.json:
                print(json.dumps([_row_dict(r) for r in rows], ensure_ascii=False))
                return 0
            for r in rows:
                sent = r.sent_at if r.state == "sent" else None  # set with the state
                when = (sent or r.next_attempt_at).astimezone(tz)
                print(f"{r.id}\t{r.kind}\t{r.state}\t{r.attempts}\t"
                      f"{when.isoformat(timespec='minutes')}\t"
                      f"{r.to_addrs}\t{r.subject or '-'}"
                      + (f"\t{r.last_error}" if r.last_error and r.state != "sent" else ""))
            if args.state in (None, "failed"):  # replies that never became a row
                for q in outbox.replies("failed"):
                    if q.error and q.failed_at:
                        print(f"request {q.id}\treply\tfailed\t-\t"
                              f"{q.failed_at.astimezone(tz).isoformat(timespec='minutes')}\t"
                              f"{q.to_addr}\t{q.context.get('subject') or '-'}\t{q.error}")
            return 0
        if args.request:
            done = (outbox.retry_reply(args.id) if args.outbox_command == "retry"
                    else outbox.cancel_reply(args.id))
            if not done:
                print(f"reply request {args.id} is not one that failed to render",
                      file=sys.stderr)
                return 1
            print(f"reply request {args.id} is "
                  + ("back in line; the running daemon will render it"
                     if args.outbox_command == "retry" else "cancelled"))
            return 0
        row = outbox.get(args.id)
        if args.outbox_command == "retry":
            if row is None or not outbox.retry(args.id, datetime.now(UTC)):
                print(f"outbox row {args.id} is not failed", file=sys.stderr)
                return 1
            print(f"outbox row {args.id} is queued again; the running daemon will send it")
            return 0
        if row is None or not outbox.cancel(args.id):
            print(f"outbox row {args.id} is not queued or failed", file=sys.stderr)
            return 1
        print(f"outbox row {args.id} is cancelled")
        return 0
    finally:
        store.close()

"""`mailbot outbox list|retry|cancel`: what mailbot sent, is sending, or gave up on."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ..config import Config, load_config
from ..outbox import STATES, Outbox, OutboxRow
from ..outgoing import outbox_for
from .options import Commands, add_action, add_list, open_store, row_id


def register(commands: Commands) -> None:
    outbox = commands.add_parser("outbox", help="outgoing mail: list, retry or cancel")
    sub = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)

    add_list(sub, "outbox rows", STATES, run_outbox)

    for action, text in (("retry", "put a failed row back in line with a new deadline"),
                         ("cancel", "never send a queued or failed row")):
        cmd = add_action(sub, action, text, run_outbox)
        cmd.add_argument("id", type=row_id, metavar="ID", help="the row id (mailbot outbox list)")
        cmd.add_argument("--request", action="store_true",
                         help="ID is a reply request that could not be rendered (listed as "
                              "'request ID'): render it again, or never send it")


def _row_dict(row: OutboxRow) -> dict[str, object]:
    data = {name: getattr(row, name) for name in OutboxRow.__dataclass_fields__ if name != "raw"}
    for name, value in data.items():
        if isinstance(value, datetime):
            data[name] = value.isoformat()
    return data


HEADER = "ID\tKIND\tSTATE\tTRIES\tWHEN\tTO\tSUBJECT\tERROR"


def _list(outbox: Outbox, config: Config, state: str | None) -> int:
    """The rows as a clerk reads them (JST). WHEN: sent at (sent), when it will go out
    (queued: the next attempt inside its send window; a stored reply request, not yet
    rendered: the daemon's next outbox run, then the window), failed at (failed)."""
    tz = ZoneInfo(outbox.window.tz)
    now = datetime.now(UTC)
    lines = []

    def when(at: datetime) -> str:
        return at.astimezone(tz).isoformat(timespec="minutes")

    if state in (None, "queued"):  # decided, not rendered yet: they go out as queued rows
        immediate = set(config.send_window.immediate)
        for q in outbox.replies("stored"):
            due = now if q.template in immediate else outbox.window.next_open(now)
            lines.append(f"request {q.id}\treply\tstored\t0\t{when(due)}\t{q.to_addr}\t"
                         f"{q.context.get('subject') or '-'}\t-")
    for r in outbox.rows(state):
        at = {"sent": r.sent_at, "queued": outbox.due_at(r)}.get(r.state) or r.next_attempt_at
        error = r.last_error if r.last_error and r.state != "sent" else "-"
        lines.append(f"{r.id}\t{r.kind}\t{r.state}\t{r.attempts}\t{when(at)}\t"
                     f"{r.to_addrs}\t{r.subject or '-'}\t{error}")
    if state in (None, "failed"):  # replies that never became a row
        for q in outbox.replies("failed"):
            if q.error and q.failed_at:
                lines.append(f"request {q.id}\treply\tfailed\t-\t{when(q.failed_at)}\t"
                             f"{q.to_addr}\t{q.context.get('subject') or '-'}\t{q.error}")
    if not lines:
        print("no outbox rows" + (f" in state {state}" if state else ""))
        return 0
    print(HEADER)
    print("\n".join(lines))
    return 0


def run_outbox(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = open_store(args, config)
    # Listing, retrying and cancelling never send; the windows give a retried row its deadline.
    outbox = outbox_for(config, store)
    try:
        if args.outbox_command == "list":
            if args.json:
                print(json.dumps([_row_dict(r) for r in outbox.rows(args.state)],
                                 ensure_ascii=False))
                return 0
            return _list(outbox, config, args.state)
        if args.request:
            done = (outbox.retry_reply(args.id) if args.outbox_command == "retry"
                    else outbox.cancel_reply(args.id))
            if not done:
                print(f"mailbot outbox: reply request {args.id} is not one that failed to render",
                      file=sys.stderr)
                return 1
            print(f"reply request {args.id} is "
                  + ("back in line; the running daemon will render it"
                     if args.outbox_command == "retry" else "cancelled"))
            return 0
        row = outbox.get(args.id)
        if row is None:
            print(f"mailbot outbox: no outbox row {args.id} (see mailbot outbox list)", file=sys.stderr)
            return 1
        if args.outbox_command == "retry":
            if not outbox.retry(args.id, datetime.now(UTC)):
                print(f"mailbot outbox: outbox row {args.id} is {row.state}, not failed", file=sys.stderr)
                return 1
            print(f"outbox row {args.id} is queued again; the running daemon will send it")
            return 0
        if not outbox.cancel(args.id):
            print(f"mailbot outbox: outbox row {args.id} is {row.state}, not queued or failed", file=sys.stderr)
            return 1
        print(f"outbox row {args.id} is cancelled")
        return 0
    finally:
        store.close()

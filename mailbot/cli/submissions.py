"""`mailbot submissions list|show`: the contractor side's submissions and their answers."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..config import load_config
from ..ledger import entry_by_id
from ..submit import table
from ..submit.staff import STATE_JA
from .options import Commands, add_action, add_list, open_store, row_id

TOKYO = ZoneInfo("Asia/Tokyo")
STATES = tuple(STATE_JA)


def register(commands: Commands) -> None:
    parser = commands.add_parser("submissions",
                                 help="contractor side: submissions to issuers and their answers")
    sub = parser.add_subparsers(dest="submissions_command", metavar="ACTION", required=True)
    add_list(sub, "submissions", STATES, run_submissions)
    show = add_action(sub, "show", "one submission: route, mail, answer", run_submissions)
    show.add_argument("id", type=row_id, metavar="ID", help="the id (mailbot submissions list)")


def _as_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data.pop("notice_hash", None)  # a keyed hash of the key: of no use to a reader
    for name, value in data.items():
        if isinstance(value, datetime):
            data[name] = value.isoformat()
    data["answer"] = json.loads(data["answer"]) if data.get("answer") else None
    return data


def _local(value: datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:  # SQLite: stored as UTC
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value.astimezone(TOKYO).isoformat(timespec="minutes")


def run_submissions(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = open_store(args, config)
    try:
        with store.engine.connect() as conn:
            if args.submissions_command == "list":
                rows = table.listing(conn, args.state)
                if args.json:
                    print(json.dumps([_as_dict(r) for r in rows], ensure_ascii=False))
                    return 0
                if not rows:
                    print("no submissions" + (f" in state {args.state}" if args.state else ""))
                    return 0
                print("ID\tSTATE\tNUMBER\tISSUER\tWHEN\tSUBJECT (or why not sent)")
                for r in rows:
                    print(f"{r.id}\t{r.state}\t{r.guarantee_number}\t{r.issuer or '-'}\t"
                          f"{_local(r.sent_at or r.created_at)}\t{r.subject or r.reason or '-'}")
                return 0
            row = table.get(conn, args.id)
            if row is None:
                print(f"mailbot submissions: no submission {args.id}", file=sys.stderr)
                return 1
            notice_mail = entry_by_id(conn, row.ledger_id)
        data = _as_dict(row)
        print(f"submission {row.id}: {row.guarantee_number} — {row.state} "
              f"({STATE_JA.get(row.state, row.state)})")
        for name in ("issuer", "found_by", "to_addr", "subject", "message_id", "reason"):
            if data.get(name):
                print(f"  {name:<11}{data[name]}")
        print(f"  created    {_local(row.created_at)}; sent {_local(row.sent_at)}; "
              f"answered {_local(row.answered_at)}; reminders {row.reminders}")
        if data["answer"]:
            print(f"  answer     {json.dumps(data['answer'], ensure_ascii=False)}")
        record = (notice_mail.record if notice_mail else None) or {}
        for item in record.get("submissions", []):
            if item.get("message_id") == row.message_id:
                for line in item.get("trail", []):
                    print(f"  route      {line}")
        return 0
    finally:
        store.close()

"""`mailbot submissions list|show`: the contractor side's submissions and their answers."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..config import load_config
from ..store import Store, resolve_store_url
from ..store.schema import ledger, submissions
from ..submit.staff import STATE_JA
from .options import Commands, add_config_and_store

TOKYO = ZoneInfo("Asia/Tokyo")
STATES = tuple(STATE_JA)


def register(commands: Commands) -> None:
    parser = commands.add_parser("submissions",
                                 help="contractor side: submissions to issuers and their answers")
    sub = parser.add_subparsers(dest="submissions_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="list submissions, oldest first")
    add_config_and_store(listing)
    listing.add_argument("--state", choices=STATES, help="only submissions in this state")
    listing.add_argument("--json", action="store_true", help="a JSON array of submissions")
    listing.set_defaults(func=run_submissions)
    show = sub.add_parser("show", help="one submission: route, mail, answer")
    add_config_and_store(show)
    show.add_argument("id", type=int, metavar="ID")
    show.set_defaults(func=run_submissions)


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
    store = Store.open(resolve_store_url(args.store, config.store_url))
    try:
        with store.engine.connect() as conn:
            if args.submissions_command == "list":
                query = select(submissions).order_by(submissions.c.id)
                if args.state:
                    query = query.where(submissions.c.state == args.state)
                rows = list(conn.execute(query))
                if args.json:
                    print(json.dumps([_as_dict(r) for r in rows], ensure_ascii=False))
                    return 0
                for r in rows:
                    print(f"{r.id}\t{r.state}\t{r.guarantee_number}\t{r.issuer or '-'}\t"
                          f"{_local(r.sent_at or r.created_at)}\t{r.subject or r.reason or '-'}")
                return 0
            row = conn.execute(select(submissions).where(submissions.c.id == args.id)).first()
            if row is None:
                print(f"no submission {args.id}", file=sys.stderr)
                return 1
            decision = conn.execute(select(ledger.c.decision)
                                    .where(ledger.c.id == row.ledger_id)).scalar()
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
        record = json.loads(decision) if decision else {}
        for item in record.get("submissions", []):
            if item.get("message_id") == row.message_id:
                for line in item.get("trail", []):
                    print(f"  route      {line}")
        return 0
    finally:
        store.close()

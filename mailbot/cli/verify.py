"""`mailbot verify NUMBER KEY …`: a clerk checks one guarantee at a terminal (docs/contracts.md)."""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from parsers.normalize import canonical_key, canonical_number, clean_value

from ..config import load_config
from ..errors import UsageError
from ..verify import Claim, IssuerPolicy, verify
from .options import Commands, add_config_and_store, open_store, parse_date_arg

TOKYO = ZoneInfo("Asia/Tokyo")
# What an [issuers.ID] key looks like (an issuer's name is the Japanese one, 〇〇市).
_ISSUER_ID = re.compile(r"[A-Za-z0-9_-]+")


def register(commands: Commands) -> None:
    cmd = commands.add_parser("verify", help="check a guarantee number and key against the store")
    cmd.add_argument("number", metavar="NUMBER", help="保証契約番号, e.g. 35075-00001M")
    cmd.add_argument("key", metavar="KEY", help="認証キー as written on the notice")
    cmd.add_argument("--issuer", metavar="NAME", help="the receiving issuer (config ID or name)")
    cmd.add_argument("--kind", metavar="K", help="前払金保証, 中間前払金保証 or 契約保証")
    cmd.add_argument("--project", metavar="P", help="工事名 as submitted")
    cmd.add_argument("--contractor", metavar="C", help="受注者名 as submitted")
    cmd.add_argument("--on", metavar="DATE", help="the day the claim is checked for (default today)")
    cmd.add_argument("--sender", metavar="ADDR",
                     help="sender address (or a throttle key like domain:maru.example.jp), "
                          "for the throttle")
    cmd.add_argument("--json", action="store_true", help="print one JSON object")
    add_config_and_store(cmd, config_required=False)
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    number = canonical_number(args.number)
    if number is None:
        raise UsageError(f"NUMBER: {args.number!r} is not a guarantee number (like 35075-00001M)")
    key = canonical_key(args.key)
    if key is None:
        raise UsageError("KEY: not an authentication key (8–32 ASCII letters and digits)")
    config = load_config(args.config)
    # Without --issuer the issuer rule does not apply and the default ratios are used.
    if args.issuer and args.config is None and _ISSUER_ID.fullmatch(args.issuer):
        raise UsageError(f"--issuer {args.issuer}: an issuer ID ([issuers.{args.issuer}]) needs "
                         "--config FILE; without one, give the issuer's name (e.g. 〇〇市)")
    if (args.issuer and args.config is not None and _ISSUER_ID.fullmatch(args.issuer)
            and not any(args.issuer == k or args.issuer in p.names
                        for k, p in config.issuers.items())):
        # A mistyped ID would be checked as an issuer *named* so: issuer_mismatch.
        known = ", ".join(sorted(config.issuers)) or "none"
        raise UsageError(f"--issuer {args.issuer}: no [issuers.{args.issuer}] in {args.config} "
                         f"(its issuers: {known})")
    policy = config.issuer(args.issuer) if args.issuer else IssuerPolicy()
    claim = Claim(
        guarantee_number=number,
        auth_key=key,
        on=parse_date_arg(args.on, "--on") if args.on else datetime.now(TOKYO).date(),
        kind=clean_value(args.kind) if args.kind else None,
        project_name=args.project,
        contractor=args.contractor,
        sender=_throttle_key(args.sender),
    )
    store = open_store(args, config)
    try:
        result = verify(store, claim, policy)
    finally:
        store.close()
    if args.json:
        print(json.dumps(result.to_json_obj(), ensure_ascii=False))
    else:
        print(f"{number}: {', '.join(result.outcomes)}")
        for reason in result.reasons:
            print(f"  {reason}")
        for diff in result.differences:
            print(f"  {diff.field}: store {diff.store!s} / submitted {diff.notice!s}")
        trail = ", ".join(f"{r['rule']}{'!' if r['hit'] else ''}" for r in result.rules)
        print(f"  rules: {trail}")
    return 0 if result.verified else 1


def _throttle_key(sender: str | None) -> str | None:
    """The throttle key the pipeline would use for `sender` (mailbot/pipeline/sender_key.py):
    ``addr:`` and the address, or a key given as it is."""
    if not sender:
        return None
    if sender.startswith(("addr:", "domain:")):
        return sender
    return "addr:" + sender.strip().lower()

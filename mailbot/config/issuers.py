"""`[issuers.ID]` tables → `IssuerPolicy` (names, kinds, eligibility, ratios, throttle, chain)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from mailbot.errors import UsageError
from mailbot.verify.chain import check_chain
from mailbot.verify.policy import DEFAULT_CHAIN, AmountLimits, IssuerPolicy, ThrottleLimits
from parsers.model import KINDS

from .reader import TomlReader

ISSUER_KEYS = ("name", "aliases", "accepted_kinds", "awarded_on_or_after", "chain", "amounts",
               "throttle", "staff", "template_set", "departments", "reply_from", "reply_name",
               "charset", "signature", "submission")


def read_issuer(r: TomlReader, data: dict[str, Any], where: str) -> IssuerPolicy:
    r.no_extra(data, ISSUER_KEYS, where)
    kinds = r.strings(data, "accepted_kinds", where) or KINDS
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise r.fail(f"{where}.accepted_kinds", f"unknown kind {bad[0]!r}")
    start = data.get("awarded_on_or_after")
    if start is not None and not isinstance(start, date):
        raise r.fail(f"{where}.awarded_on_or_after", "must be a TOML date (2026-07-01)")
    chain = r.strings(data, "chain", where) or DEFAULT_CHAIN
    try:
        check_chain(chain)
    except UsageError as exc:
        raise r.fail(f"{where}.chain", str(exc)) from None
    departments = r.table(data, "departments", where, optional=True)
    for kind, department in departments.items():
        if kind not in KINDS or not isinstance(department, str):
            raise r.fail(f"{where}.departments.{kind}", "must map a kind to a department name")
    return IssuerPolicy(
        name=r.string(data, "name", where),
        aliases=r.strings(data, "aliases", where) or (),
        accepted_kinds=kinds,
        awarded_on_or_after=start,
        amounts=_amounts(r, r.table(data, "amounts", where, True), f"{where}.amounts"),
        throttle=_throttle(r, r.table(data, "throttle", where, True), f"{where}.throttle"),
        chain=chain,
        staff=r.strings(data, "staff", where) or (),
        template_set=r.string(data, "template_set", where, optional=True, default="default")
        or "default",
        departments=tuple(sorted(departments.items())),
        reply_from=r.string(data, "reply_from", where, optional=True),
        reply_name=r.string(data, "reply_name", where, optional=True),
        charset=r.choice(data, "charset", where, ("utf-8", "iso-2022-jp")),
        signature=str(data.get("signature", "")),
    )


def _amounts(r: TomlReader, data: dict[str, Any], where: str) -> AmountLimits:
    d = AmountLimits()
    names = ("advance_max", "intermediate_max", "advances_total_max", "contract_min",
             "contract_min_low_bid")
    r.no_extra(data, names, where)
    return AmountLimits(*(r.ratio(data, n, where, getattr(d, n)) for n in names))


def _throttle(r: TomlReader, data: dict[str, Any], where: str) -> ThrottleLimits:
    d = ThrottleLimits()
    names = ("per_sender", "sender_window_minutes", "per_number", "number_window_minutes")
    r.no_extra(data, names, where)
    return ThrottleLimits(
        per_sender=r.count(data, "per_sender", where, d.per_sender),
        sender_window=timedelta(minutes=r.count(
            data, "sender_window_minutes", where, int(d.sender_window.total_seconds() // 60))),
        per_number=r.count(data, "per_number", where, d.per_number),
        number_window=timedelta(minutes=r.count(
            data, "number_window_minutes", where, int(d.number_window.total_seconds() // 60))),
    )

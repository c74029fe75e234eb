"""`[issuers.ID]` tables → `IssuerPolicy` (names, kinds, eligibility, ratios, throttle, chain).

`IssuerPolicy`, `AmountLimits` and `ThrottleLimits` are the verifier's plain data
(`mailbot.verify.policy`); the tables below say, once, which TOML key fills which field.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mailbot.errors import UsageError
from mailbot.verify.chain import check_chain
from mailbot.verify.policy import AmountLimits, IssuerPolicy, ThrottleLimits
from parsers.model import KINDS

from .reader import Item, Key, TomlReader, build
from .values import (
    any_text,
    choice,
    count,
    own_address,
    ratio,
    recipients,
    section,
    strings,
    text,
    toml_date,
)


def _kinds(item: Item) -> tuple[str, ...]:
    kinds: tuple[str, ...] = strings(item)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise item.fail(f"unknown kind {bad[0]!r}")
    return kinds


def _chain(item: Item) -> tuple[str, ...]:
    chain: tuple[str, ...] = strings(item)
    try:
        check_chain(chain)
    except UsageError as exc:
        raise item.fail(str(exc)) from None
    return chain


def _departments(item: Item) -> tuple[tuple[str, str], ...]:
    departments = item.r.table(item.data, item.key, item.where, optional=True)
    for kind, department in departments.items():
        if kind not in KINDS or not isinstance(department, str):
            raise item.fail("must map a kind to a department name", f"{item.path}.{kind}")
    return tuple(sorted(departments.items()))


def _minutes(item: Item) -> timedelta:
    if item.raw is None:
        return item.default
    return timedelta(minutes=count(item))


AMOUNT_KEYS = {name: Key(ratio) for name in (
    "advance_max", "intermediate_max", "advances_total_max", "contract_min",
    "contract_min_low_bid")}
THROTTLE_KEYS = {
    "per_sender": Key(count),
    "sender_window": Key(_minutes, "sender_window_minutes"),
    "per_number": Key(count),
    "number_window": Key(_minutes, "number_window_minutes"),
}
ISSUER_KEYS = {
    "name": Key(text, required=True),
    "aliases": Key(strings),
    "accepted_kinds": Key(_kinds),
    "awarded_on_or_after": Key(toml_date("2026-07-01")),
    "amounts": Key(section(AmountLimits, keys=AMOUNT_KEYS)),
    "throttle": Key(section(ThrottleLimits, keys=THROTTLE_KEYS)),
    "chain": Key(_chain),
    "staff": Key(recipients),
    "template_set": Key(text),
    "departments": Key(_departments),
    "reply_from": Key(own_address),
    "reply_name": Key(text),
    "charset": Key(choice("utf-8", "iso-2022-jp")),
    "signature": Key(any_text),
}


def read_issuer(r: TomlReader, data: dict[str, Any], where: str) -> IssuerPolicy:
    # `submission` is the contractor side's form for this issuer (`read_submission`);
    # `auth` its authentication requirement (`mailbot.config.auth.read_overrides`).
    return build(r, IssuerPolicy, data, where, keys=ISSUER_KEYS, extra=("submission", "auth"))

"""How the console shows values: times in JST, states and roles in Japanese.

Jinja filters (`FILTERS`) shared by every page's template. Nothing here sees a key: pages
are given masked values only (`mailbot.verify` masks; `tests/test_web_keys.py` greps).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailbot.store.schema import utc

TOKYO = ZoneInfo("Asia/Tokyo")

LEDGER_STATES_JA = {
    "received": "受信済(未処理)",
    "processing": "処理中",
    "decided": "判定済",
    "replied": "返信済",
    "quarantined": "隔離",
}
ROLES_JA = {"viewer": "閲覧", "operator": "担当者", "admin": "管理者"}


def jst(value: datetime | None, with_seconds: bool = False) -> str:
    """`2026-12-02 19:25 JST`; "" for None."""
    if value is None:
        return ""
    local = utc(value).astimezone(TOKYO)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M") + " JST"


def label(value: Any, table: dict[str, str]) -> str:
    return table.get(str(value), str(value))


FILTERS: dict[str, Any] = {
    "jst": jst,
    "ledger_state_ja": lambda v: label(v, LEDGER_STATES_JA),
    "role_ja": lambda v: label(v, ROLES_JA),
}

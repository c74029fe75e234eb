"""Plain data of the guarantee store: one event in a guarantee's history, and a version.

An import file row, a `mailbot store issue` call and an amendment all become a
`GuaranteeEvent`; applying events in order yields `GuaranteeVersion`s, the latest of which is
what a notice is verified against. Keys never appear here in clear once hashed: `auth_key`
exists only on the way in and is replaced by `key_hash` in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

# The 対象 column (docs/contracts.md): Japanese word ↔ code name.
EVENTS: dict[str, str] = {"新規": "new", "変更": "amendment", "訂正": "correction", "取消": "cancellation"}
EVENT_CODES = tuple(EVENTS.values())


@dataclass(frozen=True)
class GuaranteeEvent:
    """One row of a guarantee's history as read from an import file or the CLI.

    For `amendment` and `correction` a field left None means "unchanged"; `auth_key` None
    means the key is unchanged. A `cancellation` needs only the number.
    """

    guarantee_number: str
    event: str = "new"  # one of EVENT_CODES
    auth_key: str | None = None
    kind: str | None = None
    issuer: str | None = None
    contractor: str | None = None
    project_name: str | None = None
    jv_name: str | None = None
    contract_amount: int | None = None
    guaranteed_amount: int | None = None
    bank: str | None = None
    term_start: date | None = None
    term_end: date | None = None
    expires_on: date | None = None
    contract_date: date | None = None
    awarded_on: date | None = None
    surety: str | None = None
    issued_at: datetime | None = None
    change_no: int | None = None
    low_bid: bool | None = None  # 低入札 (our extension); None = unchanged / not said
    # Where the event came from, for error messages: "FILE:LINE" or "cli".
    source: str = ""


#: Fields carried from one version to the next unless an event changes them.
VERSION_FIELDS = (
    "kind", "issuer", "contractor", "project_name", "jv_name", "contract_amount",
    "guaranteed_amount", "bank", "term_start", "term_end", "expires_on", "contract_date",
    "awarded_on", "surety", "issued_at", "low_bid",
)

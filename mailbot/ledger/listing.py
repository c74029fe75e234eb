"""The listing columns a decision fills in (migration 0011_ledger_listing), so that the
console filters by status, outcome and folder without reading every decision's JSON.

Each helper takes the decision record as stored (any shape: an old or a hand-made record
gives None rather than an error). `outcomes` holds the record's outcome codes and problem
codes, space-separated with a space before and after (" key_mismatch no_text_layer "), so
that `LIKE '% code %'` finds one code and never part of another.
"""

from __future__ import annotations

from typing import Any

MAX_STATUS = 16


def routed_issuer(decision: Any) -> str | None:
    """The [issuers.ID] the decision's routing chose (the console's scope), if any."""
    routing = decision.get("routing") if isinstance(decision, dict) else None
    issuer = routing.get("issuer") if isinstance(routing, dict) else None
    return issuer if isinstance(issuer, str) else None


def status_of(decision: Any) -> str | None:
    status = decision.get("status") if isinstance(decision, dict) else None
    return status[:MAX_STATUS] if isinstance(status, str) else None


def folder_of(decision: Any) -> str | None:
    folder = decision.get("folder") if isinstance(decision, dict) else None
    return folder if isinstance(folder, str) else None


def codes_of(decision: Any) -> str | None:
    """" code code " of the record's outcomes and problems; None when it has neither."""
    if not isinstance(decision, dict):
        return None
    codes = [c for c in decision.get("outcomes") or [] if isinstance(c, str)]
    codes += [str(p["code"]) for p in decision.get("problems") or []
              if isinstance(p, dict) and isinstance(p.get("code"), str)]
    words = sorted({c for c in codes if c and " " not in c})
    return f" {' '.join(words)} " if words else None


def listing(decision: Any) -> dict[str, str | None]:
    """The ledger's listing columns for `decision`: issuer, status, outcomes, folder."""
    return {"issuer": routed_issuer(decision), "status": status_of(decision),
            "outcomes": codes_of(decision), "folder": folder_of(decision)}

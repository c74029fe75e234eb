"""The console's audit trail: the one owner of `web_audit`.

Every state-changing action taken through the console is written here in the same
transaction as the change it records where the owner of the changed table lets the caller
pass its connection, else right after it: who (the account), from where (the client's
address), what (`action`), on which row (`target`: "ledger:12", "outbox:3",
"submission:5"), the mail it concerns (`ledger_id`) and a note. A log in and a refused log
in are written too. No key is ever written here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from mailbot.store.schema import utc, web_audit

# What the 要対応 actions write (`mailbot/web/actions.py`): the entries that change whether an
# item still needs a person.
ITEM_ACTIONS = ("handled", "retry", "cancel", "resend")


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    account: str
    address: str | None
    action: str
    target: str | None
    ledger_id: int | None
    detail: str | None


class Audit:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def write(self, account: str, action: str, *, at: datetime, address: str | None = None,
              target: str | None = None, ledger_id: int | None = None,
              detail: str | None = None, conn: Connection | None = None) -> None:
        values = dict(at=at, account=account, address=address, action=action, target=target,
                      ledger_id=ledger_id, detail=detail)
        if conn is not None:
            conn.execute(insert(web_audit).values(**values))
            return
        with self.engine.begin() as own:
            own.execute(insert(web_audit).values(**values))

    def of_mail(self, ledger_id: int) -> list[AuditEntry]:
        return self._select(web_audit.c.ledger_id == ledger_id)

    def of_target(self, target: str) -> list[AuditEntry]:
        return self._select(web_audit.c.target == target)

    def handled(self, targets: Iterable[str]) -> dict[str, datetime]:
        """Target → when it was last marked handled ("handled"), for those of `targets`
        whose latest action on the item (`ITEM_ACTIONS`) is that mark: a later retry or
        resend through the console opens the item again, a look at it (a raw download) does
        not (`mailbot/web/act_items.py` also compares the row's own changes)."""
        wanted = sorted(set(targets))
        latest: dict[str, tuple[str, datetime]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                for target, action, at in conn.execute(
                        select(web_audit.c.target, web_audit.c.action, web_audit.c.at)
                        .where(web_audit.c.target.in_(chunk),
                               web_audit.c.action.in_(ITEM_ACTIONS))
                        .order_by(web_audit.c.id)):
                    latest[target] = (action, utc(at))
        return {target: at for target, (action, at) in latest.items() if action == "handled"}

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        return self._select(None, limit)

    def _select(self, where: object, limit: int = 1000) -> list[AuditEntry]:
        query = select(web_audit).order_by(web_audit.c.id.desc()).limit(limit)
        if where is not None:
            query = query.where(where)  # type: ignore[arg-type]
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(id=r.id, at=utc(r.at), account=r.account, address=r.address,
                           action=r.action, target=r.target, ledger_id=r.ledger_id,
                           detail=r.detail) for r in rows]

"""What one console account may see: the mail, guarantees and submissions in its scope.

An account names the `[issuers.ID]` keys it sees ("*": every issuer) and whether it sees the
contractor side. A ledger row belongs to an issuer by its routing (`ledger.issuer`, set at
the decision); a row not decided yet (received, quarantined) by its mailbox's own issuer, so
mail of a shared mailbox with `[[routes]]` is, until decided, seen only by accounts of every
issuer. Contractor-side rows are those of `role = "contractor"` mailboxes. Guarantees belong
to an issuer by the name their versions carry (`IssuerPolicy.names`).

Everything the console lists or opens goes through `ledger_clause()` / `sees_*`: a row out
of scope is answered 404, as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement

from mailbot.config import Config
from mailbot.store.schema import ledger

from .accounts import Account


@dataclass(frozen=True)
class Scope:
    issuers: frozenset[str] | None  # [issuers.ID] keys; None: every issuer
    contractor: bool
    issuer_mailboxes: frozenset[str]  # issuer-role mailboxes whose own issuer is in scope
    contractor_mailboxes: frozenset[str]
    issuer_names: frozenset[str] | None  # every name of the issuers in scope; None: all

    @classmethod
    def of(cls, account: Account, config: Config) -> Scope:
        every = account.all_issuers
        keys = None if every else frozenset(k for k in account.issuers if k in config.issuers)
        issuer_boxes = frozenset(
            m.name for m in config.mailboxes
            if m.role == "issuer" and (every or (m.issuer is not None and keys is not None
                                                 and m.issuer in keys)))
        contractor_boxes = frozenset(
            m.name for m in config.mailboxes if m.role == "contractor") if account.contractor \
            else frozenset()
        names = None if every else frozenset(
            name for key in (keys or ()) for name in config.issuers[key].names)
        return cls(keys, account.contractor, issuer_boxes, contractor_boxes, names)

    def ledger_clause(self) -> ColumnElement[bool]:
        """The SQL condition on `ledger` rows this scope sees."""
        parts: list[ColumnElement[bool]] = []
        if self.issuers is None:
            parts.append(ledger.c.mailbox.in_(sorted(self.issuer_mailboxes)))
            parts.append(ledger.c.issuer.is_not(None))
        else:
            if self.issuers:
                parts.append(ledger.c.issuer.in_(sorted(self.issuers)))
            if self.issuer_mailboxes:
                parts.append(and_(ledger.c.issuer.is_(None),
                                  ledger.c.mailbox.in_(sorted(self.issuer_mailboxes))))
        if self.contractor_mailboxes:
            parts.append(ledger.c.mailbox.in_(sorted(self.contractor_mailboxes)))
        return or_(*parts) if parts else false()

    def sees_row(self, mailbox: str, issuer: str | None) -> bool:
        """Whether a ledger row of `mailbox`, routed to `issuer` (or not yet), is in scope;
        the same rule as `ledger_clause`."""
        if mailbox in self.contractor_mailboxes:
            return True
        if issuer is not None:
            return self.issuers is None or issuer in self.issuers
        return mailbox in self.issuer_mailboxes

    def sees_issuer(self, issuer: str | None) -> bool:
        """Whether mail about the [issuers.ID] `issuer` is in scope."""
        return self.issuers is None or (issuer is not None and issuer in self.issuers)

    def sees_guarantee_issuer(self, name: str | None) -> bool:
        """Whether a guarantee whose versions name the issuer `name` is in scope."""
        return self.issuer_names is None or (name is not None and name in self.issuer_names)

    @property
    def any_issuer(self) -> bool:
        return self.issuers is None or bool(self.issuers)

"""Local accounts of the web console: the one owner of `web_accounts`.

A password is kept only as an argon2id hash (argon2-cffi's defaults, RFC 9106's second
recommended profile); `verify` rehashes it when those parameters change. An account has one
role — viewer (reads), operator (acts on what needs a person), admin (also imports into the
guarantee store and downloads raw mail) — and a scope: the `[issuers.ID]` keys whose mail it
sees ("*": every issuer) and whether it sees the contractor side. Changing a password or
disabling an account moves `changed_at`, which ends every session issued before it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from mailbot.store.schema import utc, web_accounts

ROLES = ("viewer", "operator", "admin")
ALL_ISSUERS = "*"
MIN_PASSWORD = 12
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_HASHER = PasswordHasher()
# Verified against when the account does not exist, so that a wrong name costs as long as a
# wrong password and the answer does not tell which one was wrong.
_DUMMY_HASH = _HASHER.hash("mailbot-no-such-account")


class AccountError(ValueError):
    """A refused account operation, as one sentence naming the field."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    issuers: tuple[str, ...]  # [issuers.ID] keys; ("*",) for all
    contractor: bool
    disabled: bool
    changed_at: datetime

    def can(self, role: str) -> bool:
        """Whether this account's role is `role` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def all_issuers(self) -> bool:
        return ALL_ISSUERS in self.issuers


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise AccountError(f"account name {name!r}: letters, digits and . _ @ - only "
                           "(at most 64, starting with a letter or digit)")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
    if password.strip() != password or "\x00" in password:
        raise AccountError("password: no leading or trailing white space, no NUL")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
    return role


class Accounts:
    """`web_accounts` on the store's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, password: str, role: str, issuers: tuple[str, ...],
            contractor: bool, now: datetime) -> Account:
        check_name(name)
        check_password(password)
        check_role(role)
        if not issuers and not contractor:
            raise AccountError("scope: name at least one issuer (or *) or the contractor side")
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(web_accounts).values(
                    name=name, password_hash=_HASHER.hash(password), role=role,
                    issuers=json.dumps(list(issuers)), contractor=contractor, disabled=False,
                    created_at=now, changed_at=now))
        except IntegrityError:
            raise AccountError(f"account {name!r} exists already") from None
        found = self.get(name)
        assert found is not None
        return found

    def get(self, name: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(web_accounts).where(web_accounts.c.name == name)).first()
        return _account(row) if row is not None else None

    def all(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(web_accounts).order_by(web_accounts.c.name)).all()
        return [_account(row) for row in rows]

    def set_password(self, name: str, password: str, now: datetime) -> None:
        check_password(password)
        self._update(name, now, password_hash=_HASHER.hash(password))

    def set_disabled(self, name: str, disabled: bool, now: datetime) -> None:
        self._update(name, now, disabled=disabled)

    def _update(self, name: str, now: datetime, **values: object) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(web_accounts).where(web_accounts.c.name == name)
                                .values(changed_at=now, **values))
        if done.rowcount != 1:
            raise AccountError(f"no account {name!r}")

    def verify(self, name: str, password: str) -> Account | None:
        """The account when `password` is its password and it is enabled; else None, after
        the same work whether the name exists or not."""
        with self.engine.connect() as conn:
            row = conn.execute(select(web_accounts).where(web_accounts.c.name == name)).first()
        stored = row.password_hash if row is not None else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled:
            return None
        if _HASHER.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(update(web_accounts).where(web_accounts.c.name == name)
                             .values(password_hash=_HASHER.hash(password)))
        return _account(row)


def _account(row: object) -> Account:
    r = row._mapping  # type: ignore[attr-defined]
    return Account(name=r["name"], role=r["role"], issuers=tuple(json.loads(r["issuers"])),
                   contractor=bool(r["contractor"]), disabled=bool(r["disabled"]),
                   changed_at=utc(r["changed_at"]))

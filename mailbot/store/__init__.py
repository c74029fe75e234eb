"""The guarantee store: what the sureties issued, with each guarantee's full history.

`Store` (SQLite or PostgreSQL through SQLAlchemy, migrated with Alembic) holds versions of
guarantees with keys only as HMACs; `resolve_store_url` applies the order of docs/contracts.md for
choosing the database.
"""

from .model import EVENTS, GuaranteeEvent
from .store import ApplyReport, Store, StoreError, Version, contract_key
from .url import resolve_store_url

__all__ = [
    "EVENTS",
    "ApplyReport",
    "GuaranteeEvent",
    "Store",
    "StoreError",
    "Version",
    "contract_key",
    "resolve_store_url",
]

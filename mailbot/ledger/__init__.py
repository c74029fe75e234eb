"""Intake bookkeeping: the durable spool of raw messages (a folder, or the store's
`raw_messages` table with PostgreSQL: `spool_for`), the ledger of their states and the
reply requests their decisions store (`requests`, the `reply_requests` table's owner)."""

from .entry import Earlier, Entry, LedgerState, RawPurged, Receipt, ReplyRequest
from .ledger import MAX_ATTEMPTS, Ledger, entry_by_id, oldest_waiting, received_since
from .rawstore import DbSpool, spool_for
from .requests import ReplyRow
from .spool import RawStore, Spool
from .sync import SourceState, source_states

__all__ = ["MAX_ATTEMPTS", "DbSpool", "Earlier", "Entry", "Ledger", "LedgerState", "RawPurged",
           "RawStore", "Receipt", "ReplyRequest", "ReplyRow", "SourceState", "Spool",
           "entry_by_id", "oldest_waiting", "received_since", "source_states", "spool_for"]

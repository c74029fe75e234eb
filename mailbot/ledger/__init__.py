"""Intake bookkeeping: the durable spool of raw messages, the ledger of their states and the
reply requests their decisions store (`requests`, the `reply_requests` table's owner)."""

from .entry import Earlier, Entry, LedgerState, RawPurged, Receipt, ReplyRequest
from .ledger import MAX_ATTEMPTS, Ledger, entry_by_id, oldest_waiting, received_since
from .requests import ReplyRow
from .spool import Spool
from .sync import SourceState, source_states

__all__ = ["MAX_ATTEMPTS", "Earlier", "Entry", "Ledger", "LedgerState", "RawPurged", "Receipt",
           "ReplyRequest", "ReplyRow", "SourceState", "Spool", "entry_by_id", "oldest_waiting",
           "received_since", "source_states"]

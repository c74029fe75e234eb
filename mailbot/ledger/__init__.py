"""Intake bookkeeping: the durable spool of raw messages, the ledger of their states and the
reply requests their decisions store (`requests`, the `reply_requests` table's owner)."""

from .entry import Earlier, Entry, LedgerState, Receipt, ReplyRequest
from .ledger import MAX_ATTEMPTS, Ledger, entry_by_id, received_since
from .requests import ReplyRow
from .spool import Spool

__all__ = ["MAX_ATTEMPTS", "Earlier", "Entry", "Ledger", "LedgerState", "Receipt", "ReplyRequest",
           "ReplyRow", "Spool", "entry_by_id", "received_since"]

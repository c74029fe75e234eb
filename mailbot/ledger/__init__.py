"""Intake bookkeeping: the durable spool of raw messages and the ledger of their states."""

from .ledger import MAX_ATTEMPTS, Earlier, Entry, Ledger, Receipt, ReplyRequest
from .spool import Spool

__all__ = ["MAX_ATTEMPTS", "Earlier", "Entry", "Ledger", "Receipt", "ReplyRequest", "Spool"]

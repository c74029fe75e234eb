"""Mail sources: where raw messages come in (SMTP/LMTP, IMAP) on their way to the ledger."""

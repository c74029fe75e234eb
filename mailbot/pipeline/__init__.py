"""The intake pipeline: read → route → verify → decision, as plain functions over plain data.

Nothing here talks to a server: the daemon feeds it messages from the ledger, and
`mailbot replay` feeds it .eml files, so the same decisions can be tried without servers.
"""

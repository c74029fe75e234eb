"""mailbot: e-mail intake and submission automation for electronic construction guarantees.

The daemon, store, pipeline, outbox, scheduler and CLI live here; reading mail and notices
is the separate `parsers` library. `mailbot.cli` is the console entry point.
"""

__version__ = "0.1.0"

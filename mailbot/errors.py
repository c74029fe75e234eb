"""Exceptions that the CLI turns into exit codes (docs/contracts.md)."""


class UsageError(Exception):
    """A mistake in how mailbot was called or configured (exit 2)."""

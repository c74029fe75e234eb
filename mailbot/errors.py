"""Exceptions that the CLI turns into exit codes (DESIGN.md §4)."""


class UsageError(Exception):
    """A mistake in how mailbot was called or configured (exit 2)."""

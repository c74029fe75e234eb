"""Placeholder until the page is built (see `mailbot/web/pages/__init__.py`)."""

from __future__ import annotations

from ..app import Routes

ROUTES = Routes()

"""Outgoing mail text: replies to contractors and digests/alerts for staff, from templates/."""

from .render import (
    REPO_TEMPLATES,
    ReplySettings,
    jis_safe,
    new_message_id,
    render_reply,
    render_staff,
    strip_reply_prefixes,
)

__all__ = [
    "REPO_TEMPLATES",
    "ReplySettings",
    "jis_safe",
    "new_message_id",
    "render_reply",
    "render_staff",
    "strip_reply_prefixes",
]

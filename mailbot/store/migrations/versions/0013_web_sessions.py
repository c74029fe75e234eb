"""Console sessions held by the server: `web_sessions`, so that logging out ends a session
even for a copy of its cookie (mailbot/web/sessions.py). Sessions of the earlier cookie-only
form carry no id and end at once: everyone logs in again after the upgrade. And
`web_login_failures`: the log in throttle's failures in the store (mailbot/web/throttle.py),
shared by every node's console.

Revision ID: 0013_web_sessions
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_web_sessions"
down_revision = "0012_cluster"


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_web_sessions_expires", "web_sessions", ["expires_at"])
    op.create_table(
        "web_login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_login_failures_key", "web_login_failures", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_web_login_failures_key", "web_login_failures")
    op.drop_table("web_login_failures")
    op.drop_index("ix_web_sessions_expires", "web_sessions")
    op.drop_table("web_sessions")

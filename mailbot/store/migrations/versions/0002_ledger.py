"""Intake ledger: received messages and their states, mailbox sync state, stored replies.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mailbox", sa.String(120), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger),
        sa.Column("uid", sa.BigInteger),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("spool_name", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("message_id", sa.Text),
        sa.Column("sender", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decision", sa.Text),
        sa.Column("action", sa.String(200)),
        sa.Column("action_state", sa.String(16), nullable=False),
        sa.Column("reply_wanted", sa.Boolean, nullable=False),
        sa.UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_ledger_uid"),
        sa.UniqueConstraint("mailbox", "sha256", name="uq_ledger_content"),
    )
    op.create_index("ix_ledger_state", "ledger", ["state"])
    op.create_index("ix_ledger_action", "ledger", ["mailbox", "action_state"])
    op.create_table(
        "mailbox_state",
        sa.Column("mailbox", sa.String(120), primary_key=True),
        sa.Column("uidvalidity", sa.BigInteger),
        sa.Column("last_uid", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.DateTime(timezone=True)),
        sa.Column("last_sync_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "reply_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledger.id"), nullable=False,
                  unique=True),
        sa.Column("to_addr", sa.Text, nullable=False),
        sa.Column("template", sa.String(80), nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reply_requests")
    op.drop_table("mailbox_state")
    op.drop_table("ledger")

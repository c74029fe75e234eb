"""Contractor side: submissions, per-issuer send windows, interrupted sends, body hashes.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("window", sa.String(120)))
    op.add_column("outbox", sa.Column("claimed_at", sa.DateTime(timezone=True)))
    op.add_column("ledger", sa.Column("body_sha256", sa.String(64)))
    op.create_index("uq_ledger_same_message", "ledger",
                    ["mailbox", "message_id", "body_sha256"], unique=True)
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledger.id"), nullable=False),
        sa.Column("notice_hash", sa.String(64), nullable=False),
        sa.Column("guarantee_number", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16)),
        sa.Column("project_name", sa.Text),
        sa.Column("issuer", sa.String(120)),
        sa.Column("found_by", sa.String(16)),
        sa.Column("to_addr", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("earlier_ids", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("answer_ledger_id", sa.Integer),
        sa.Column("answer", sa.Text),
        sa.Column("reminders", sa.Integer, nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("notice_hash", name="uq_submissions_notice"),
        sa.UniqueConstraint("message_id", name="uq_submissions_message_id"),
    )
    op.create_index("ix_submissions_state", "submissions", ["state"])
    op.create_index("ix_submissions_number", "submissions", ["guarantee_number"])


def downgrade() -> None:
    op.drop_index("ix_submissions_number", table_name="submissions")
    op.drop_index("ix_submissions_state", table_name="submissions")
    op.drop_table("submissions")
    op.drop_index("uq_ledger_same_message", table_name="ledger")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("body_sha256")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("window")

"""Reply requests that cannot be rendered end `failed` with the error and the moment.

Revision ID: 0006_reply_errors
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_reply_errors"
down_revision = "0005_ledger_copies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reply_requests", sa.Column("error", sa.Text))
    op.add_column("reply_requests", sa.Column("failed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("reply_requests") as batch:
        batch.drop_column("failed_at")
        batch.drop_column("error")

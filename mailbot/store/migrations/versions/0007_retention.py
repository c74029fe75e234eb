"""Retention: raw mail and rendered bodies can be purged, the rows that held them stay.

`outbox.raw` becomes nullable (a sent row's body is purged after `[retention] raw_days`);
`outbox.purged_at` and `ledger.purged_at` say when the body or the spooled raw mail was
removed, so that whatever reads them later can say so instead of failing on a missing file.

Revision ID: 0007_retention
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_retention"
down_revision = "0006_reply_errors"


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("raw", existing_type=sa.LargeBinary, nullable=True)
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True)))
    op.add_column("ledger", sa.Column("purged_at", sa.DateTime(timezone=True)))
    # A purge asks for every row using one spool file, in any mailbox.
    op.create_index("ix_ledger_sha256", "ledger", ["sha256"])


def downgrade() -> None:
    """Fails while the outbox holds purged rows: the old schema needs every body (delete
    the purged rows first)."""
    op.drop_index("ix_ledger_sha256", table_name="ledger")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("purged_at")
        batch.alter_column("raw", existing_type=sa.LargeBinary, nullable=False)

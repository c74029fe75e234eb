"""Ledger copies: every IMAP message is its own row, whatever its bytes.

`uq_ledger_content` made a second byte-identical copy in one folder (or a mail a clerk moved
back into the watched folder) the same row as the first, so it was never filed. It goes;
content stays unique only for rows without a UID (SMTP/LMTP, where a relay's retry is the
same message), and `copy_of` links a copy to the first row of its message.

Revision ID: 0005_ledger_copies
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_ledger_copies"
down_revision = "0004"
branch_labels = None
depends_on = None

_UNSOURCED = sa.text("uid IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_constraint("uq_ledger_content", type_="unique")
        batch.add_column(sa.Column("copy_of", sa.Integer))
    op.create_index("ix_ledger_content", "ledger", ["mailbox", "sha256"])
    op.create_index("uq_ledger_content_unsourced", "ledger", ["mailbox", "sha256"], unique=True,
                    sqlite_where=_UNSOURCED, postgresql_where=_UNSOURCED)
    op.create_index("ix_ledger_copy_of", "ledger", ["copy_of"])


def downgrade() -> None:
    """Fails while the ledger holds two rows with the same bytes in one mailbox: the old
    schema cannot record them (delete the copies first)."""
    op.drop_index("ix_ledger_copy_of", table_name="ledger")
    op.drop_index("uq_ledger_content_unsourced", table_name="ledger")
    op.drop_index("ix_ledger_content", table_name="ledger")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("copy_of")
        batch.create_unique_constraint("uq_ledger_content", ["mailbox", "sha256"])

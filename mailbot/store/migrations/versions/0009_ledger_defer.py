"""Authentication deferrals: a mail whose checks met a DNS `temperror` waits and is tried
again, without that counting as a crash.

`ledger.not_before` is when a deferred row may be claimed again (`Ledger.claim()` skips it
until then) and `ledger.deferrals` how often it was deferred; `attempts` keeps counting only
the pipeline's crashes, which quarantine a message at the third. `ix_ledger_claim` serves the
claim's look-up of received rows that are due.

Revision ID: 0009_ledger_defer
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_ledger_defer"
down_revision = "0008_store_meta"


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("deferrals", sa.Integer, nullable=False,
                                   server_default="0"))
    op.create_index("ix_ledger_claim", "ledger", ["state", "not_before"])


def downgrade() -> None:
    """Rows waiting for their retry lose the wait and are decided at the next claim."""
    op.drop_index("ix_ledger_claim", table_name="ledger")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("deferrals")
        batch.drop_column("not_before")

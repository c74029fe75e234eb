"""The cluster: raw messages in the database, leases, and who holds each claim.

`raw_messages` holds each message's bytes under its spool name when the store is
PostgreSQL (every node must read what another received). `leases` holds the IMAP mailbox,
job and node leases of mailbot/cluster. `ledger.claimed_by` / `claim_expires` and
`outbox.claimed_by` say which node has a row in hand and until when (docs/cluster.md).

Revision ID: 0012_cluster
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_cluster"
down_revision = "0011_ledger_listing"


def upgrade() -> None:
    op.create_table(
        "raw_messages",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(160), primary_key=True),
        sa.Column("holder", sa.String(120), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tick", sa.String(40)),
        sa.Column("done", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("place", sa.Text),
    )
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(120)))
        batch.add_column(sa.Column("claim_expires", sa.DateTime(timezone=True)))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(120)))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("claim_expires")
        batch.drop_column("claimed_by")
    op.drop_table("leases")
    op.drop_table("raw_messages")

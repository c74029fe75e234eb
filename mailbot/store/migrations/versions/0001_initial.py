"""Initial store: guarantees, their versions, key failures.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guarantees",
        sa.Column("guarantee_number", sa.String(40), primary_key=True),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "guarantee_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "guarantee_number",
            sa.String(40),
            sa.ForeignKey("guarantees.guarantee_number"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("change_no", sa.Integer),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16)),
        sa.Column("issuer", sa.Text),
        sa.Column("contractor", sa.Text),
        sa.Column("project_name", sa.Text),
        sa.Column("jv_name", sa.Text),
        sa.Column("contract_amount", sa.BigInteger),
        sa.Column("guaranteed_amount", sa.BigInteger),
        sa.Column("bank", sa.Text),
        sa.Column("term_start", sa.Date),
        sa.Column("term_end", sa.Date),
        sa.Column("expires_on", sa.Date),
        sa.Column("contract_date", sa.Date),
        sa.Column("awarded_on", sa.Date),
        sa.Column("surety", sa.Text),
        sa.Column("issued_at", sa.DateTime(timezone=True)),
        sa.Column("low_bid", sa.Boolean, nullable=False),
        sa.Column("contract_key", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("guarantee_number", "version", name="uq_versions_number_version"),
        sa.UniqueConstraint("guarantee_number", "row_hash", name="uq_versions_number_row"),
    )
    op.create_index("ix_versions_contract_key", "guarantee_versions", ["contract_key"])
    op.create_table(
        "key_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_key_failures_lookup", "key_failures", ["scope", "subject", "at"])


def downgrade() -> None:
    op.drop_table("key_failures")
    op.drop_table("guarantee_versions")
    op.drop_table("guarantees")

"""Initial store: guarantees, their versions, key failures.

Revision ID: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _columns(kind: type[sa.types.TypeEngine[Any]], *names: str) -> list[sa.Column[Any]]:
    """Nullable columns of one type, in the order given."""
    return [sa.Column(name, kind) for name in names]


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
        *_columns(sa.Text, "issuer", "contractor", "project_name", "jv_name"),
        *_columns(sa.BigInteger, "contract_amount", "guaranteed_amount"),
        sa.Column("bank", sa.Text),
        *_columns(sa.Date, "term_start", "term_end", "expires_on", "contract_date", "awarded_on"),
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

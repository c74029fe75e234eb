"""Tables of the guarantee store (SQLAlchemy Core), shared by the store and its migrations.

One row per guarantee (`guarantees`, pointing at its latest version) and one row per
version (`guarantee_versions`: every 新規 / 変更 / 訂正 / 取消 event with the fields in force
after it). Keys are stored only as an HMAC (`key_hash`). `key_failures` backs the throttle.
The same schema runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

guarantees = Table(
    "guarantees",
    metadata,
    Column("guarantee_number", String(40), primary_key=True),
    Column("latest_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

versions = Table(
    "guarantee_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "guarantee_number",
        String(40),
        ForeignKey("guarantees.guarantee_number"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("event", String(16), nullable=False),
    Column("change_no", Integer),
    Column("key_hash", String(64), nullable=False),
    Column("kind", String(16)),
    Column("issuer", Text),
    Column("contractor", Text),
    Column("project_name", Text),
    Column("jv_name", Text),
    Column("contract_amount", BigInteger),
    Column("guaranteed_amount", BigInteger),
    Column("bank", Text),
    Column("term_start", Date),
    Column("term_end", Date),
    Column("expires_on", Date),
    Column("contract_date", Date),
    Column("awarded_on", Date),
    Column("surety", Text),
    Column("issued_at", DateTime(timezone=True)),
    Column("low_bid", Boolean, nullable=False, default=False),
    # Normalised issuer|project|contractor, to find the other advances of one contract.
    Column("contract_key", String(64), nullable=False),
    # Hash of the event as imported: re-importing the same row changes nothing.
    Column("row_hash", String(64), nullable=False),
    Column("source", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("guarantee_number", "version", name="uq_versions_number_version"),
    UniqueConstraint("guarantee_number", "row_hash", name="uq_versions_number_row"),
)
Index("ix_versions_contract_key", versions.c.contract_key)

key_failures = Table(
    "key_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(16), nullable=False),  # "sender" or "number"
    Column("subject", String(320), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_key_failures_lookup", key_failures.c.scope, key_failures.c.subject, key_failures.c.at)

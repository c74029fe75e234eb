"""The store remembers which key-hashing secret hashed its keys.

`store_meta` holds named facts about the store itself; `secret_check` is an HMAC of a fixed
label under the secret first used with the store, so that opening it with another secret
(a MAILBOT_SECRET exported for a different store) is refused instead of answering every
valid key `key_mismatch`.

Revision ID: 0008_store_meta
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_store_meta"
down_revision = "0007_retention"


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_meta")

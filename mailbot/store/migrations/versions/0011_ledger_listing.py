"""The console's mail listing: what each decision says, in columns of the ledger.

`ledger.status` (the decision record's "status"), `ledger.outcomes` (its outcome and
problem codes, space-separated with a space before and after, so `LIKE '% code %'` finds
one), `ledger.folder` (where it was filed) and `ix_ledger_received` for the listing's
keyset order (received_at, id), and `ix_versions_key_hash`: every console page is checked
against the store's key hashes before it leaves (mailbot/web/redact.py). The decisions already recorded fill them in here, a batch
of rows at a time.

Revision ID: 0011_ledger_listing
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0011_ledger_listing"
down_revision = "0010_web"
BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("status", sa.String(16)))
        batch.add_column(sa.Column("outcomes", sa.Text))
        batch.add_column(sa.Column("folder", sa.Text))
    op.create_index("ix_ledger_received", "ledger", ["received_at", "id"])
    op.create_index("ix_versions_key_hash", "guarantee_versions", ["key_hash"])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    ledger = sa.table("ledger", sa.column("id", sa.Integer), sa.column("decision", sa.Text),
                      sa.column("status", sa.String), sa.column("outcomes", sa.Text),
                      sa.column("folder", sa.Text))
    last = 0
    while True:
        rows = conn.execute(sa.select(ledger.c.id, ledger.c.decision)
                            .where(ledger.c.id > last, ledger.c.decision.is_not(None))
                            .order_by(ledger.c.id).limit(BATCH)).all()
        if not rows:
            return
        last = rows[-1][0]
        changes = [values for values in map(_columns, rows) if values is not None]
        if changes:
            conn.execute(sa.update(ledger).where(ledger.c.id == sa.bindparam("row_id"))
                         .values(status=sa.bindparam("new_status"),
                                 outcomes=sa.bindparam("new_outcomes"),
                                 folder=sa.bindparam("new_folder")), changes)


def _columns(row: tuple[int, str]) -> dict[str, object] | None:
    """One decided row's new values, None when its decision is no JSON object."""
    try:
        record = json.loads(row[1])
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    status, folder = record.get("status"), record.get("folder")
    problems = [p.get("code") for p in record.get("problems") or [] if isinstance(p, dict)]
    codes = sorted({c for c in [*(record.get("outcomes") or []), *problems]
                    if isinstance(c, str) and c and " " not in c})
    return {"row_id": row[0], "new_status": status[:16] if isinstance(status, str) else None,
            "new_outcomes": f" {' '.join(codes)} " if codes else None,
            "new_folder": folder if isinstance(folder, str) else None}


def downgrade() -> None:
    op.drop_index("ix_versions_key_hash", table_name="guarantee_versions")
    op.drop_index("ix_ledger_received", table_name="ledger")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("folder")
        batch.drop_column("outcomes")
        batch.drop_column("status")

"""The web console's accounts and audit trail (docs/console.md).

`web_accounts`: local accounts (argon2 hashes, role, the issuers and side they see);
`web_audit`: every action taken through the console, with the account's name;
`ledger.issuer`: the [issuers.ID] a decided row is about (its routing's issuer), and
`ledger_notices`: the notices each decided row read (number, project, contractor), both
filled in here from the decisions already recorded.

Revision ID: 0010_web
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0010_web"
down_revision = "0009_ledger_defer"


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("issuer", sa.String(120)))
    op.create_index("ix_ledger_issuer", "ledger", ["issuer"])
    op.create_table(
        "ledger_notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledger.id"), nullable=False),
        sa.Column("guarantee_number", sa.String(40), nullable=False),
        sa.Column("project_name", sa.Text),
        sa.Column("contractor", sa.Text),
    )
    op.create_index("ix_ledger_notices_number", "ledger_notices", ["guarantee_number"])
    op.create_index("ix_ledger_notices_ledger", "ledger_notices", ["ledger_id"])
    _fill_from_decisions()
    op.create_table(
        "web_accounts",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("issuers", sa.Text, nullable=False),
        sa.Column("contractor", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "web_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(80)),
        sa.Column("ledger_id", sa.Integer),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_web_audit_ledger", "web_audit", ["ledger_id"])
    op.create_index("ix_web_audit_target", "web_audit", ["target"])


def _fill_from_decisions() -> None:
    conn = op.get_bind()
    ledger = sa.table("ledger", sa.column("id", sa.Integer), sa.column("decision", sa.Text),
                      sa.column("issuer", sa.String))
    notices = sa.table("ledger_notices", sa.column("ledger_id", sa.Integer),
                       sa.column("guarantee_number", sa.String),
                       sa.column("project_name", sa.Text), sa.column("contractor", sa.Text))
    rows = conn.execute(sa.select(ledger.c.id, ledger.c.decision)
                        .where(ledger.c.decision.is_not(None))).all()
    for row_id, decision in rows:
        try:
            record = json.loads(decision)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        routing = record.get("routing")
        issuer = routing.get("issuer") if isinstance(routing, dict) else None
        if isinstance(issuer, str):
            conn.execute(sa.update(ledger).where(ledger.c.id == row_id)
                         .values(issuer=issuer[:120]))
        found = [n for n in record.get("notices") or [] if isinstance(n, dict)
                 and isinstance(n.get("guarantee_number"), str)]
        if found:
            conn.execute(sa.insert(notices), [
                {"ledger_id": row_id, "guarantee_number": n["guarantee_number"][:40],
                 "project_name": _text(n.get("project_name")),
                 "contractor": _text(n.get("contractor"))} for n in found])


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def downgrade() -> None:
    op.drop_table("ledger_notices")
    op.drop_table("web_audit")
    op.drop_table("web_accounts")
    op.drop_index("ix_ledger_issuer", table_name="ledger")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("issuer")

"""Tables of the guarantee store (SQLAlchemy Core), shared by the store and its migrations.

One row per guarantee (`guarantees`, pointing at its latest version) and one row per
version (`guarantee_versions`: every 新規 / 変更 / 訂正 / 取消 event with the fields in force
after it). Keys are stored only as an HMAC (`key_hash`). `key_failures` backs the throttle.
The same schema runs on SQLite and PostgreSQL. Columns that may hold text from a mail are
`MailText`: no NUL or lone surrogate reaches the database, whatever the sender sent.
Timestamps are `DateTime(timezone=True)` holding UTC; `utc()` reads them back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .dbtext import MailText

metadata = MetaData()


def utc(value: datetime) -> datetime:
    """A timestamp column's value as an aware UTC datetime: SQLite hands datetimes back
    without their zone (they were stored as UTC), PostgreSQL aware ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    Column("subject", MailText(320), nullable=False),  # a sender address or a number
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_key_failures_lookup", key_failures.c.scope, key_failures.c.subject, key_failures.c.at)

# -- intake ledger (migration 0002) ------------------------------------------------------
ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mailbox", String(120), nullable=False),
    Column("uidvalidity", BigInteger),  # IMAP only
    Column("uid", BigInteger),  # IMAP only
    Column("sha256", String(64), nullable=False),
    Column("spool_name", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("message_id", MailText),
    Column("sender", MailText),
    Column("subject", MailText),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # received → processing → decided → replied, or → quarantined
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", MailText),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision", MailText),  # JSON: notices, problems, routing, outcomes, rules
    Column("action", String(200)),  # mailbox action after the decision, e.g. "move:電子保証/処理済"
    Column("action_state", String(16), nullable=False, default="none"),  # none|pending|done
    Column("reply_wanted", Boolean, nullable=False, default=True),
    UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_ledger_uid"),
)
Index("ix_ledger_state", ledger.c.state)
Index("ix_ledger_action", ledger.c.mailbox, ledger.c.action_state)

mailbox_state = Table(
    "mailbox_state",
    metadata,
    Column("mailbox", String(120), primary_key=True),
    Column("uidvalidity", BigInteger),
    Column("last_uid", BigInteger, nullable=False),
    Column("last_error", MailText),
    Column("last_error_at", DateTime(timezone=True)),
    Column("last_sync_at", DateTime(timezone=True)),
)

reply_requests = Table(
    "reply_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ledger_id", Integer, ForeignKey("ledger.id"), nullable=False, unique=True),
    Column("to_addr", MailText, nullable=False),
    Column("template", String(80), nullable=False),
    Column("context", MailText, nullable=False),  # JSON handed to the template
    Column("state", String(16), nullable=False),  # stored (until the outbox issue) → queued → sent
    Column("created_at", DateTime(timezone=True), nullable=False),
)
# A request that could not be rendered: `failed`, with why and when (migration 0006).
reply_requests.append_column(Column("error", MailText))
reply_requests.append_column(Column("failed_at", DateTime(timezone=True)))

# -- outbox (migration 0003) -------------------------------------------------------------
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # one of mailbot.outbox.KINDS
    Column("reply_request_id", Integer, ForeignKey("reply_requests.id")),
    Column("ledger_id", Integer),
    # Chosen before the first attempt and the same in every retry (docs/reliability.md).
    Column("message_id", MailText, nullable=False),
    Column("to_addrs", MailText, nullable=False),  # bare addresses, comma-separated
    Column("subject", MailText),  # decoded, for listings
    # the rendered message as sent; NULL once purged (migration 0007, `purged_at`)
    Column("raw", LargeBinary),
    Column("state", String(16), nullable=False),  # queued → sent | failed | cancelled
    Column("immediate", Boolean, nullable=False, default=False),  # send outside the window
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("last_error", MailText),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("reply_request_id", name="uq_outbox_reply_request"),
    UniqueConstraint("message_id", name="uq_outbox_message_id"),
)
Index("ix_outbox_due", outbox.c.state, outbox.c.next_attempt_at)
# Outbox rows sent under one issuer's window, and a send in progress (migration 0004).
outbox.append_column(Column("window", String(120)))  # None: the default send window
outbox.append_column(Column("claimed_at", DateTime(timezone=True)))  # set while sending

# The body's hash: the same message delivered twice (a relay retry after a lost 250) is
# one submission at the issuer, whatever Received: headers the copies gained on the way.
ledger.append_column(Column("body_sha256", String(64)))
Index("uq_ledger_same_message", ledger.c.mailbox, ledger.c.message_id, ledger.c.body_sha256,
      unique=True)

# Copies (migration 0005_ledger_copies). Each IMAP message (mailbox, UIDVALIDITY, UID) is its
# own row, so that each one ends filed: byte-identical copies in one folder are several rows.
# Only a message without a UID (SMTP/LMTP: a relay's retry) is one row per content.
ledger.append_column(Column("copy_of", Integer))  # the first row of this message, on a copy
Index("ix_ledger_content", ledger.c.mailbox, ledger.c.sha256)
Index("uq_ledger_content_unsourced", ledger.c.mailbox, ledger.c.sha256, unique=True,
      sqlite_where=ledger.c.uid.is_(None), postgresql_where=ledger.c.uid.is_(None))
Index("ix_ledger_copy_of", ledger.c.copy_of)

# Retention (migration 0007_retention): when the spooled raw mail of a row, or a sent outbox
# row's body, was purged after `[retention] raw_days`. The rows themselves stay (audit trail).
ledger.append_column(Column("purged_at", DateTime(timezone=True)))
Index("ix_ledger_sha256", ledger.c.sha256)  # every row using one spool file, across mailboxes
outbox.append_column(Column("purged_at", DateTime(timezone=True)))

# Authentication deferrals (migration 0009_ledger_defer). A mail whose authentication met a
# DNS `temperror` goes back to `received` until `not_before` (a claim skips it until then);
# `deferrals` counts how often, apart from the crash `attempts` that lead to quarantine.
ledger.append_column(Column("not_before", DateTime(timezone=True)))
ledger.append_column(Column("deferrals", Integer, nullable=False, default=0))
Index("ix_ledger_claim", ledger.c.state, ledger.c.not_before)  # received rows that are due

# -- contractor side (migration 0004) ----------------------------------------------------
submissions = Table(
    "submissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ledger_id", Integer, ForeignKey("ledger.id"), nullable=False),  # the notice mail
    # HMAC of number + key: the same notice arriving twice is submitted once; an amended
    # guarantee (new key) is a new notice.
    Column("notice_hash", String(64), nullable=False),
    Column("guarantee_number", String(40), nullable=False),
    Column("kind", MailText(16)),
    Column("project_name", MailText),
    Column("issuer", String(120)),  # the [issuers.ID] key; None when unroutable
    Column("found_by", String(16)),  # store | text | project | None
    Column("to_addr", MailText),
    Column("subject", MailText),
    Column("message_id", MailText, nullable=False),  # the submission mail's (also when unroutable)
    Column("earlier_ids", MailText),  # Message-IDs of earlier submissions of this notice
    # queued → sent → confirmed | discrepancy | answered; unroutable; failed
    Column("state", String(16), nullable=False),
    Column("reason", MailText),  # why it is unroutable / failed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("answered_at", DateTime(timezone=True)),
    Column("answer_ledger_id", Integer),
    Column("answer", MailText),  # JSON: outcome codes, reasons, the answer's subject
    Column("reminders", Integer, nullable=False, default=0),
    Column("reminded_at", DateTime(timezone=True)),
    UniqueConstraint("notice_hash", name="uq_submissions_notice"),
    UniqueConstraint("message_id", name="uq_submissions_message_id"),
)
Index("ix_submissions_state", submissions.c.state)
Index("ix_submissions_number", submissions.c.guarantee_number)

# -- the store itself (migration 0008) ---------------------------------------------------
# Named facts about the store: `secret_check`, which secret hashed its keys (store.py).
store_meta = Table(
    "store_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# -- the console (migration 0010_web, docs/console.md) -------------------------------------
# The [issuers.ID] a decided row is about (its routing's issuer), so that the console shows
# a clerk only the mail of the issuers the account is scoped to; None before the decision
# (the console then goes by the mailbox's own issuer) and on the contractor side.
ledger.append_column(Column("issuer", String(120)))
Index("ix_ledger_issuer", ledger.c.issuer)

# The notices a decided row read, one row each (owner: mailbot/ledger/ledger.py, written
# with the decision), so that the console finds the mails citing a guarantee number, a
# project or a contractor without reading every decision's JSON.
ledger_notices = Table(
    "ledger_notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ledger_id", Integer, ForeignKey("ledger.id"), nullable=False),
    Column("guarantee_number", MailText(40), nullable=False),
    Column("project_name", MailText),
    Column("contractor", MailText),
)
Index("ix_ledger_notices_number", ledger_notices.c.guarantee_number)
Index("ix_ledger_notices_ledger", ledger_notices.c.ledger_id)

# Local accounts of the web console (owner: mailbot/web/accounts.py). `issuers` is a JSON
# list of [issuers.ID] keys the account sees ("*": all); `contractor` whether it sees the
# contractor side. A session issued before `changed_at` (password changed, account disabled)
# is no longer valid.
web_accounts = Table(
    "web_accounts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),  # viewer | operator | admin
    Column("issuers", Text, nullable=False),
    Column("contractor", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# What people did through the console (owner: mailbot/web/audit.py): who, from where, what,
# to which row (`target` like "ledger:12", "outbox:3", "submission:5"), and the mail it
# concerns, so a mail's page shows its whole trail. `detail` holds no key in clear.
web_audit = Table(
    "web_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("account", String(64), nullable=False),
    Column("address", String(64)),
    Column("action", String(40), nullable=False),
    Column("target", String(80)),
    Column("ledger_id", Integer),
    Column("detail", MailText),
)
Index("ix_web_audit_ledger", web_audit.c.ledger_id)
Index("ix_web_audit_target", web_audit.c.target)

# -- the console's mail listing (migration 0011_ledger_listing) ----------------------------
# What the decision says, in columns of their own (owner: mailbot/ledger/listing.py, written
# with the decision), so that 受付一覧 filters without reading every decision's JSON: the
# record's `status`, its outcome and problem codes as " code code " (a `LIKE '% code %'`
# finds one), and the `folder` it was filed to. `ix_ledger_received` serves the listing's
# keyset order (newest first: received_at, then id).
ledger.append_column(Column("status", String(16)))
ledger.append_column(Column("outcomes", Text))
ledger.append_column(Column("folder", MailText))
Index("ix_ledger_received", ledger.c.received_at, ledger.c.id)
# Every console page is checked against the store's key hashes (mailbot/web/redact.py).
Index("ix_versions_key_hash", versions.c.key_hash)

# -- the cluster (migration 0012_cluster) --------------------------------------------------
# Raw messages in the database (owner: mailbot/ledger/rawstore.py) when the store is
# PostgreSQL, so that every node reads what any node received: one row per content, keyed
# by the ledger's `spool_name` (which holds the SHA-256). SQLite keeps the local spool.
raw_messages = Table(
    "raw_messages",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("raw", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
)

# Leases (owner: mailbot/cluster/leases.py): who watches an IMAP mailbox, who runs a
# scheduled job, which nodes are alive. A lease is held until `expires_at` (the database's
# clock) and renewed by its holder; `token` grows at every change of holder (a fencing
# token). `tick` and `done` say which run of a job the holder took and whether it finished.
leases = Table(
    "leases",
    metadata,
    Column("name", String(160), primary_key=True),
    Column("holder", String(120), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("renewed_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("tick", String(40)),
    Column("done", Boolean, nullable=False, default=False),
    # a node lease: where the holder runs (host and working folder); a new run in the
    # same place, which holds that folder's lock, knows the earlier holder is dead
    Column("place", Text),
)

# Claims: the node that has a ledger row in `processing` (or an outbox row being sent) and
# until when; a claim past its expiry belongs to a dead node and returns to the queue.
ledger.append_column(Column("claimed_by", String(120)))
ledger.append_column(Column("claim_expires", DateTime(timezone=True)))
outbox.append_column(Column("claimed_by", String(120)))

# -- console sessions (migration 0013_web_sessions) ----------------------------------------
# One row per console log in (owner: mailbot/web/sessions.py): the SHA-256 of the random
# session id the signed cookie carries (never the id itself), the account, and when it
# ends. Logging out ends the row, so a copy of the cookie is refused from then on.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("account", String(64), nullable=False),
    Column("address", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
)
Index("ix_web_sessions_expires", web_sessions.c.expires_at)

# Failed console log ins of the last minute (owner: mailbot/web/throttle.py), per
# "account:NAME" and per "address:IP": every node's console counts the same failures.
web_login_failures = Table(
    "web_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_web_login_failures_key", web_login_failures.c.key, web_login_failures.c.at)

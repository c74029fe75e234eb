"""What `mailbot status` says of the cluster: nodes, who holds which lease, and claims
past their expiry (a dead node's rows nobody has taken back yet)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mailbot.store.dbclock import database_now
from mailbot.store.schema import ledger, outbox

from .leases import lease_rows


def cluster_report(engine: Engine, imap_mailboxes: list[str]) -> dict[str, Any]:
    """Nodes, leases, expired ledger claims and outbox rows claimed by dead nodes, and
    the configured IMAP mailboxes no live node watches (`problems`)."""
    rows = lease_rows(engine)
    live = {r.holder for r in rows if r.name.startswith("node:") and not r.expired}
    with engine.connect() as conn:
        now = database_now(conn)
        expired = conn.execute(
            select(func.count(), func.min(ledger.c.claim_expires)).where(
                ledger.c.state == "processing", ledger.c.claim_expires.is_not(None),
                ledger.c.claim_expires < now)).one()
        sending = select(func.count()).where(
            outbox.c.state == "queued", outbox.c.claimed_at.is_not(None),
            outbox.c.claimed_by.is_not(None))
        if live:
            sending = sending.where(outbox.c.claimed_by.not_in(sorted(live)))
        dead_sending = conn.execute(sending).scalar_one()
    leases = [{"lease": r.name, "node": r.node, "holder": r.holder,
               "expires_at": r.expires_at.isoformat(), "expired": r.expired,
               **({"tick": r.tick, "done": r.done} if r.name.startswith("job:") else {})}
              for r in rows]
    watched = {r.name.split(":", 1)[1] for r in rows
               if r.name.startswith("mailbox:") and not r.expired}
    problems = []
    if rows and expired[0]:
        problems.append(f"{expired[0]} message(s) claimed past their expiry "
                        f"(oldest claim ended {expired[1]})")
    if dead_sending:
        problems.append(f"{dead_sending} outgoing mail(s) claimed by a node that stopped")
    if any(r.name.startswith("node:") and not r.expired for r in rows):
        problems += [f"IMAP mailbox {m} is watched by no live node"
                     for m in imap_mailboxes if m not in watched]
    return {"leases": leases, "expired_claims": expired[0], "dead_sending": dead_sending,
            "problems": problems}


def report_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for lease in report["leases"]:
        state = "expired" if lease["expired"] else f"until {lease['expires_at']}"
        tick = (f", run {lease['tick']} {'done' if lease['done'] else 'running'}"
                if "tick" in lease and lease["tick"] else "")
        lines.append(f"  {lease['lease']}: {lease['holder']} ({state}{tick})")
    return (["cluster:", *lines] if lines else []) + [f"PROBLEM: {p}" for p in report["problems"]]

"""The pipeline loop's one step: claim the oldest due ledger row, authenticate its author,
decide it and record the decision, reply request and mailbox action in one transaction
(`Pipeline.process_one`). A crash counts an attempt, the third quarantines the message
with its traceback; a DNS `temperror` puts it back to wait (`Ledger.defer`). Used by
`mailbot run` (mailbot/daemon.py), tests and benches without any source.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from mailbot.auth import Authenticator
from mailbot.config import Config, MailboxConfig
from mailbot.ledger import Earlier, Entry, Ledger, LedgerState
from mailbot.monitor import Monitor
from mailbot.outgoing import outbox_for
from mailbot.pipeline.authenticate import AuthStep, deferral_reason, note, verdict_result
from mailbot.pipeline.contractor import decide_contractor
from mailbot.pipeline.decide import decide, mailbox_action
from mailbot.pipeline.facts import MailFacts, body_sha256, mail_facts
from mailbot.pipeline.issuer_alert import alert_writes
from mailbot.pipeline.records import CONTRACTOR_DONE, DecisionRecord, Status
from mailbot.pipeline.redecision import redecided
from mailbot.store import Store
from parsers import Reader

log = logging.getLogger("mailbot.daemon")
decisions_log = logging.getLogger("mailbot.decision")


def wall_clock() -> datetime:
    """The real time, aware and in UTC: the default of every clock a test may replace."""
    return datetime.now(UTC)


class Pipeline:
    """Claims ledger rows and decides them; usable without any source (tests, replay)."""

    def __init__(self, config: Config, store: Store, ledger: Ledger, reader: Reader,
                 clock: Callable[[], datetime] | None = None, monitor: Monitor | None = None,
                 authenticator: Authenticator | None = None, holder: str | None = None) -> None:
        self.config = config
        self.clock = clock or wall_clock  # decisions and the mail they cause are stamped by it
        self.monitor = monitor or Monitor()  # told of each decision and quarantine
        self.store = store
        self.ledger = ledger
        self.reader = reader
        self.mailboxes = {m.name: m for m in config.mailboxes}
        self.outbox = outbox_for(config, store)  # submissions are queued with their decision
        self.auth = AuthStep(config.auth, authenticator)  # `[auth]`: the verdict on each author
        self._lock = threading.Lock()
        self._orphans: list[tuple[int, int, str]] = []  # claimed rows to release
        self.holder = holder  # the cluster node's `node#incarnation`, kept on each claim
        self._in_hand: set[int] = set()  # ledger ids the loops are deciding now

    def in_hand(self) -> frozenset[int]:
        """The ledger rows being decided right now: the only claims the heartbeat renews."""
        with self._lock:
            return frozenset(self._in_hand)

    def process_one(self) -> bool:
        """Decide the oldest waiting message; False when there is none."""
        self._release_orphans()
        entry = self.ledger.claim(now=self.clock(), holder=self.holder,
                                  claim_seconds=self.config.cluster.claim_seconds)
        if entry is None:
            return False
        with self._lock:
            self._in_hand.add(entry.id)
        try:
            self._decide(entry)
        except Exception:
            error = traceback.format_exc()
            try:
                state = self.ledger.fail(entry.id, error, attempt=entry.attempts)
            except Exception:
                # The database is gone too: release the row once it is back.
                with self._lock:
                    self._orphans.append((entry.id, entry.attempts, error))
                raise
            if state == LedgerState.QUARANTINED:
                self.monitor.quarantined(entry.mailbox)
            log.error("message %s (ledger %d) failed in the pipeline, attempt %d: now %s",
                      entry.message_id, entry.id, entry.attempts, state,
                      extra={"ledger_id": entry.id, "mailbox": entry.mailbox,
                             "message_id": entry.message_id, "attempt": entry.attempts,
                             "state": state})
        finally:
            with self._lock:
                self._in_hand.discard(entry.id)
        return True

    def _release_orphans(self) -> None:
        with self._lock:
            orphans, self._orphans = self._orphans, []
        for index, (entry_id, attempt, error) in enumerate(orphans):
            try:
                self.ledger.fail(entry_id, error, attempt=attempt)
            except Exception:
                with self._lock:
                    self._orphans.extend(orphans[index:])
                raise

    def _decide(self, entry: Entry) -> None:
        """Decide one row. A copy of a message seen before (`Ledger.earlier_copy`) is filed
        as a duplicate with no decision of its own, or — a mail a person moved back into
        the watched folder — decided again, linked to the earlier decision (`redecision_of`)
        and answered only when the outcome changed."""
        mailbox = self.mailboxes.get(entry.mailbox)
        if mailbox is None:
            raise RuntimeError(f"mailbox {entry.mailbox!r} is no longer in the configuration")
        raw = self.ledger.raw(entry)
        facts = mail_facts(raw, mailbox.name)
        body = body_sha256(raw)
        earlier = self.ledger.earlier_copy(entry, body)
        if earlier is not None and earlier.kind == "duplicate":
            self._second_copy(entry, mailbox, facts, earlier)
            return
        checked = self.auth.check(raw, facts, mailbox.kind)
        facts = checked.facts
        self.monitor.authenticated(verdict_result(checked.verdict), checked.seconds)
        until = self.auth.wait(checked.verdict, entry.deferrals, self.clock())
        if until is not None:
            self._defer(entry, checked.verdict.summary(), deferral_reason(checked.verdict), until)
            return
        # The first row of a message marks it by its body; a re-decision is a copy.
        first_body = body if earlier is None else None
        copy_of = earlier.head if earlier is not None else None
        if mailbox.role == "contractor":
            self._decide_contractor(entry, mailbox, raw, facts, first_body, earlier)
            return
        decision = decide(raw, facts, mailbox, self.config, self.store, self.reader,
                          entry.received_at, reply_wanted=entry.reply_wanted)
        record, reply = decision.record, decision.reply
        if earlier is not None:
            reply = redecided(record, reply, earlier)
        note(record, facts.auth, entry.deferrals)
        # A throttled sender's first failing mail over the limit alerts the staff with it.
        extra = (alert_writes(self.config, self.outbox, decision.alert, entry.id, decision.action)
                 if decision.alert is not None else None)
        self.ledger.decide(entry.id, record, reply, decision.action, now=self.clock(),
                           attempt=entry.attempts, body_sha256=first_body, copy_of=copy_of,
                           subject=decision.subject, extra=extra)
        self._log(entry, facts, mailbox, record, decision.action)

    def _defer(self, entry: Entry, summary: str, reason: str, until: datetime) -> None:
        """Authentication could not be checked for now (DNS): the row waits until `until`."""
        if not self.ledger.defer(entry.id, until=until, reason=reason, attempt=entry.attempts):
            raise RuntimeError(f"ledger row {entry.id} is not being processed")
        self.monitor.deferred(entry.mailbox)
        log.warning("message %s (ledger %d): authentication met a DNS error, deferred (%d) "
                    "until %s", entry.message_id, entry.id, entry.deferrals + 1,
                    until.isoformat(), extra={"ledger_id": entry.id, "mailbox": entry.mailbox,
                                              "message_id": entry.message_id, "auth": summary,
                                              "deferrals": entry.deferrals + 1})

    def _second_copy(self, entry: Entry, mailbox: MailboxConfig, facts: MailFacts,
                     earlier: Earlier) -> None:
        """The same message again while it is still in hand (a relay retried after a lost
        250, a second copy in the folder): no second decision, no second reply; the copy is
        filed with the first."""
        record: DecisionRecord = {"mailbox": mailbox.name, "message_id": facts.message_id,
                  "sender": facts.sender, "subject": facts.subject, "status": Status.DUPLICATE,
                  "duplicate_of": earlier.of, "outcomes": [], "problems": [], "notices": []}
        action = mailbox_action(mailbox, mailbox.done_folder)
        self.ledger.decide(entry.id, record, None, action, now=self.clock(),
                           attempt=entry.attempts, copy_of=earlier.head)
        self._log(entry, facts, mailbox, record, action)

    def _decide_contractor(self, entry: Entry, mailbox: MailboxConfig, raw: bytes,
                           facts: MailFacts, body: str | None, earlier: Earlier | None) -> None:
        now = self.clock()
        record, writes = decide_contractor(raw, facts, mailbox, self.config, self.store,
                                           self.reader, self.outbox, entry.id, now,
                                           backfill=not entry.reply_wanted)
        if earlier is not None:  # moved back into the queue: planned again, like a forward
            record["redecision_of"] = earlier.of
        note(record, facts.auth, entry.deferrals)

        def apply(conn: Connection, record: DecisionRecord, at: datetime) -> str | None:
            """The writes, then the mailbox action the finished record calls for."""
            writes.apply(conn, record, at)
            done = record["status"] in CONTRACTOR_DONE
            if record["status"] == Status.ANSWER and any(
                    a["verdict"] != "confirmed" for a in record.get("answers", [])):
                done = False
            return mailbox_action(mailbox, mailbox.done_folder if done
                                  else mailbox.review_folder)

        action = self.ledger.decide(entry.id, record, None, None, now=now,
                                    attempt=entry.attempts, body_sha256=body, extra=apply,
                                    copy_of=earlier.head if earlier is not None else None)
        self._log(entry, facts, mailbox, record, action)

    def _log(self, entry: Entry, facts: MailFacts, mailbox: MailboxConfig,
             record: DecisionRecord, action: str | None) -> None:
        self.monitor.decided(mailbox.name, str(record.get("status")), record.get("outcomes", []))
        fields: dict[str, Any] = {
            "ledger_id": entry.id, "message_id": facts.message_id, "mailbox": mailbox.name,
            "status": record.get("status"), "outcomes": record.get("outcomes", []),
            "problems": [p["code"] for p in record.get("problems", [])],
            "action": action,
            **({"auth": facts.auth.summary()} if facts.auth is not None else {}),
            **{key: record[key] for key in ("duplicate_of", "redecision_of", "auth_deferred")
               if key in record},
        }
        # The message is the decision's JSON (text logs, readers of the record); in JSON logs
        # the `decision` fields are the line's own (mailbot/logs.py).
        decisions_log.info(json.dumps(fields, ensure_ascii=False), extra={"decision": fields})



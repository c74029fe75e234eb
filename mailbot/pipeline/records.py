"""The decision record: what the pipeline decided about one message, as the ledger stores it
(JSON in `ledger.decision`) and the digest, `mailbot status` and `replay` read it back.

One `TypedDict` for both sides, so the three builders (the issuer-side `decide`, the
contractor-side `decide_contractor` and the duplicate / re-decision paths of the daemon) and
the readers are checked against the same keys; it stays a plain dict, so the stored JSON is
what it always was. `Status` is the closed set of what a decision can be. No key is ever in
clear in a record: notices carry masked keys only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Required, TypedDict


class Status(StrEnum):
    """What a decision is. Issuer side: verified, discrepancy (recorded for a mailbox that is
    no issuer's). Both: duplicate (a second copy, no decision of its own). Contractor side:
    submitted, unroutable, answer (an issuer's verdict), ignored, backfill, no_notice."""

    VERIFIED = "verified"
    DISCREPANCY = "discrepancy"
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    SUBMITTED = "submitted"
    UNROUTABLE = "unroutable"
    ANSWER = "answer"
    IGNORED = "ignored"
    BACKFILL = "backfill"
    NO_NOTICE = "no_notice"


# Contractor-side statuses after which the message is filed as done (else: to review).
CONTRACTOR_DONE = (Status.SUBMITTED, Status.DUPLICATE, Status.ANSWER, Status.IGNORED,
                   Status.BACKFILL)


class Earlier(TypedDict):
    """The decision a re-decision makes again."""

    status: str | None
    outcomes: list[str]


class DecisionRecord(TypedDict, total=False):
    """One decision. The first five keys are in every record; the rest depend on the side."""

    mailbox: Required[str]
    message_id: Required[str | None]
    sender: Required[str | None]
    subject: Required[str | None]
    status: Required[str]
    outcomes: list[str]
    notices: list[dict[str, Any]]  # keys masked (issuer side) or absent (contractor side)
    problems: list[dict[str, Any]]  # {code, origin, detail}
    ignored: list[dict[str, Any]]
    warnings: list[str]
    # issuer side
    routing: dict[str, Any]
    verification: list[dict[str, Any]]
    folder: str
    reply: dict[str, Any] | None  # {template, to}
    reply_skipped: str | None
    # both sides: what was proven about the author (AuthVerdict.to_json_obj()), None when
    # nothing was checked (replays, records written before authentication)
    authentication: dict[str, Any] | None
    # contractor side
    role: str
    reason: str
    answer: dict[str, Any]
    answers: list[dict[str, Any]]  # verdict per submission; `unauthenticated` changes none
    bounce: dict[str, Any]  # a mail that looks like a bounce: to whom, what it names, proven
    submissions: list[dict[str, Any]]
    plans: list[dict[str, Any]]  # `mailbot replay`: what would be submitted
    # copies and re-decisions
    duplicate_of: int | None
    redecision_of: int | None
    earlier: Earlier
    outcome_changed: bool
    # authentication waited for DNS: {deferrals, temporary, summary} (pipeline/authenticate.py)
    auth_deferred: dict[str, Any]

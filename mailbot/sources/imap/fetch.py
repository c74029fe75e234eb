"""Reading messages out of the selected folder by UID, in bounded FETCHes.

Bodies are fetched with ``BODY.PEEK[]`` (so \\Seen is never set) in groups of at most
`FETCH_BYTES`; a UID the server sends no body for is looked up again and, when it is still
there, fetched alone; one expunged meanwhile is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from imapclient import IMAPClient

FETCH_BYTES = 32 * 1024 * 1024  # bodies fetched per FETCH command, at most (one big mail may pass)
# On a first sync, mail older than this is history: decided, but answered only when asked.
BACKFILL_AGE = timedelta(hours=24)
UID_SET_SIZE = 200  # UIDs per SEARCH/MOVE/STORE command


def recent_uids(client: IMAPClient, uids: list[int]) -> set[int]:
    """The UIDs whose INTERNALDATE is within BACKFILL_AGE of now."""
    if not uids:
        return set()
    cutoff = datetime.now(UTC) - BACKFILL_AGE
    dates = client.fetch(uids, ["INTERNALDATE"])
    recent = set()
    for uid in uids:
        when = dates.get(uid, {}).get(b"INTERNALDATE")
        if when is None:
            continue
        if when.tzinfo is None:  # imapclient gives local naive times unless told otherwise
            when = when.astimezone()
        if when >= cutoff:
            recent.add(uid)
    return recent


def fetch_messages(client: IMAPClient, uids: list[int],
                   no_body: Callable[[int], None]) -> Iterator[tuple[int, bytes]]:
    """(uid, raw) for `uids`, in FETCHes of at most FETCH_BYTES; vanished UIDs are skipped,
    and `no_body(uid)` is told of one still there whose body the server does not send."""
    if not uids:
        return
    sizes = client.fetch(uids, ["RFC822.SIZE"])
    group: list[int] = []
    total = 0
    for uid in uids:
        size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0) or 0)
        if group and total + size > FETCH_BYTES:
            yield from _fetch_bodies(client, group, no_body)
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield from _fetch_bodies(client, group, no_body)


def _fetch_bodies(client: IMAPClient, uids: list[int],
                  no_body: Callable[[int], None]) -> Iterator[tuple[int, bytes]]:
    response = client.fetch(uids, ["BODY.PEEK[]"])
    missing = []
    for uid in uids:
        raw = response.get(uid, {}).get(b"BODY[]")
        if raw is None:
            missing.append(uid)
        else:
            yield uid, bytes(raw)
    if not missing:
        return
    present = set(client.search(["UID", uid_set(missing)]))
    for uid in missing:
        if uid not in present:
            continue  # expunged since the SEARCH
        raw = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {}).get(b"BODY[]")
        if raw is not None:
            yield uid, bytes(raw)
            continue
        no_body(uid)


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def uid_set(uids: Sequence[int]) -> str:
    return ",".join(str(uid) for uid in uids)

"""`[retention]`: how long raw mail and rendered mail, which hold clear 認証キー, are kept.

`raw_days` (default 90): spool files of decided and replied messages, and the bodies of sent
or cancelled outbox rows, older than this are purged by the daily job of `mailbot run` and by
`mailbot purge` (`mailbot/retention.py`). Decisions (keys masked) and every row of the audit
trail stay. Quarantined and undecided mail is never purged.

```toml
[retention]
raw_days = 90
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from .reader import Item, key
from .values import count, time_of_day

MAX_DAYS = 36500  # a hundred years: "keep for ever" without a cut-off before year 1


def _days(item: Item) -> int:
    """Whole days, 1 to `MAX_DAYS` (more would put the cut-off before the calendar starts)."""
    value = count(item)
    if value > MAX_DAYS:
        raise item.fail(f"must be at most {MAX_DAYS} (a hundred years)")
    return value


@dataclass(frozen=True)
class RetentionConfig:
    raw_days: int = key(_days, default=90)
    # when the daemon's daily purge runs (Asia/Tokyo)
    at: time = key(time_of_day, default=time(3, 30))

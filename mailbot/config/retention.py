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

from .reader import key
from .values import count, time_of_day


@dataclass(frozen=True)
class RetentionConfig:
    raw_days: int = key(count, default=90)
    # when the daemon's daily purge runs (Asia/Tokyo)
    at: time = key(time_of_day, default=time(3, 30))

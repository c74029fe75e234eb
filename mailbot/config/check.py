"""`[check]`: the thresholds of `mailbot status --check` (Nagios-style exit codes).

Each figure has a warning and a critical threshold; reaching the warning one gives exit 1
(WARNING), the critical one exit 2 (CRITICAL). A critical threshold must not be below its
warning one. The defaults:

```toml
[check]
waiting_warn_minutes = 30        # the oldest message not yet decided …
waiting_crit_minutes = 120
quarantined_warn = 1             # messages quarantined (waiting for a person)
quarantined_crit = 10
failed_warn = 1                  # outgoing mail failed for good, replies not rendered
failed_crit = 5
source_down_warn_minutes = 15    # an IMAP source whose last error is newer than its last sync
source_down_crit_minutes = 60
```
"""

from __future__ import annotations

from dataclasses import dataclass

from .reader import Item, Reader, key
from .values import count


def _at_least(warn: str) -> Reader:
    """A whole number of at least 1 and not below the field `warn`."""
    def read(item: Item) -> int:
        value = count(item)
        floor = item.value(warn)
        if value < floor:
            raise item.fail(f"must be at least {warn} ({floor})")
        return value
    return read


@dataclass(frozen=True)
class CheckConfig:
    waiting_warn_minutes: int = key(count, default=30)
    waiting_crit_minutes: int = key(_at_least("waiting_warn_minutes"), default=120)
    quarantined_warn: int = key(count, default=1)
    quarantined_crit: int = key(_at_least("quarantined_warn"), default=10)
    failed_warn: int = key(count, default=1)
    failed_crit: int = key(_at_least("failed_warn"), default=5)
    source_down_warn_minutes: int = key(count, default=15)
    source_down_crit_minutes: int = key(_at_least("source_down_warn_minutes"), default=60)

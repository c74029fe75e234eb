"""systemd's notification protocol (sd_notify(3)) for `mailbot run` under `Type=notify`.

Each message is one datagram of `KEY=value` lines to the unix socket named by
`$NOTIFY_SOCKET`; a name starting with `@` is in the abstract namespace (a leading NUL
byte). Nothing to do when the variable is unset (not run by systemd). The protocol is this
small, so no library is used. The daemon's CLI sends `READY=1` once sources and scheduler
are up, `STOPPING=1` when it shuts down, and `STATUS=` lines `systemctl status` shows.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(*fields: str) -> bool:
    """Send `fields` (e.g. "READY=1", "STATUS=…") as one message; True if one was sent.

    A socket that cannot be reached is logged, never raised: systemd then judges the
    service by its own timeouts."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not fields:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        log.warning("NOTIFY_SOCKET=%s is not a unix socket path: not notifying systemd", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode("utf-8"))
    except OSError as exc:
        log.warning("could not notify systemd at %s: %s", os.environ["NOTIFY_SOCKET"], exc)
        return False
    return True

"""Serving the console: uvicorn on `[web] listen`, in the foreground (`mailbot web`) or in a
thread beside the daemon (`[web] run_with_daemon`, and the tests).

uvicorn's own access log is off: the audit trail records what people did, and a URL may
carry a search for a guarantee number, which the daemon's logs never hold in clear either.
"""

from __future__ import annotations

import threading
import time

import uvicorn

from mailbot.config import Config
from mailbot.store import Store

from .app import Clock, create_app, utc_now


def server(config: Config, store: Store, *, clock: Clock = utc_now,
           listen: tuple[str, int] | None = None) -> uvicorn.Server:
    host, port = listen or config.web.listen
    app = create_app(config, store, clock=clock)
    settings = uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning",
                              proxy_headers=False, server_header=False, date_header=False,
                              timeout_keep_alive=5, limit_concurrency=200, lifespan="off")
    return uvicorn.Server(settings)


class Background:
    """The console served from a thread; `url` once started."""

    def __init__(self, config: Config, store: Store, *, clock: Clock = utc_now,
                 listen: tuple[str, int] | None = None) -> None:
        self.server = server(config, store, clock=clock, listen=listen)
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)
        self.url = ""

    def start(self, timeout: float = 30.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web console did not start (is the port in use?)")
            time.sleep(0.02)
        socket = self.server.servers[0].sockets[0]
        host, port = socket.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def __enter__(self) -> Background:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

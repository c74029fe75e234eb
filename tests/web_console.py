"""The console under test: a real uvicorn on loopback serving a store with two issuers
(〇〇市 `maru`, △△町 `batsu`) and a contractor side, accounts of every role, and an httpx
client that logs in as a person would (GET the form, POST it with its CSRF token).

    with console(tmp_path) as c:
        clerk = c.login("maru-clerk")
        clerk.get("/mails")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from mailbot.config import Config, load_config
from mailbot.ledger import Ledger, Spool
from mailbot.store import Store
from mailbot.web.accounts import Accounts
from mailbot.web.server import Background

from .conftest import TEST_SECRET

PASSWORD = "correct horse battery 〇〇"
# name → (role, issuers, contractor side)
ACCOUNTS = {
    "admin": ("admin", ("*",), True),
    "maru-clerk": ("operator", ("maru",), False),
    "maru-viewer": ("viewer", ("maru",), False),
    "batsu-clerk": ("operator", ("batsu",), False),
    "contractor": ("operator", (), True),
}

CONFIG = """[store]
url = "{url}"
[spool]
dir = "{spool}"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
from = "keiyaku@maru.example.jp"
[send_window]
immediate = ["confirmation", "discrepancy"]
[digest]
enabled = false
[issuers.maru]
name = "〇〇市"
[issuers.batsu]
name = "△△町"
[[mailboxes]]
name = "maru"
role = "issuer"
issuer = "maru"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["keiyaku@maru.example.jp"]
[[mailboxes]]
name = "batsu"
role = "issuer"
issuer = "batsu"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["keiyaku@batsu.example.jp"]
[[mailboxes]]
name = "queue"
role = "contractor"
kind = "lmtp"
listen = "127.0.0.1:0"
addresses = ["denshi@maru-kensetsu.example.jp"]
[contractor]
name = "〇〇建設株式会社"
from = "denshi@maru-kensetsu.example.jp"
person = "工務部 〇〇"
contact = "03-0000-0000"
staff = ["jimu@maru-kensetsu.example.jp"]
{extra}"""


def login_form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


class Client:
    """An httpx client logged in (or not) to the console."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=30)

    def get(self, path: str, **kw: object) -> httpx.Response:
        return self.http.get(path, **kw)  # type: ignore[arg-type]

    def token(self, path: str = "/account") -> str:
        """The CSRF token of this session, from a page's form."""
        return login_form_token(self.get(path).text)

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True,
             files: dict[str, tuple[str, bytes, str]] | None = None,
             token_page: str = "/account") -> httpx.Response:
        data = dict(data or {})
        if csrf and "csrf" not in data:
            data["csrf"] = self.token(token_page)
        return self.http.post(path, data=data, files=files)

    def login(self, name: str, password: str = PASSWORD) -> httpx.Response:
        token = login_form_token(self.get("/login").text)
        return self.http.post("/login", data={"name": name, "password": password,
                                              "csrf": token})

    def close(self) -> None:
        self.http.close()


@dataclass
class Console:
    url: str
    config: Config
    store: Store
    ledger: Ledger
    path: Path
    clock: Callable[[], datetime]
    clients: list[Client] = field(default_factory=list)

    def client(self) -> Client:
        client = Client(self.url)
        self.clients.append(client)
        return client

    def login(self, name: str) -> Client:
        client = self.client()
        answer = client.login(name)
        assert answer.status_code == 303, answer.text[:2000]
        return client


@contextmanager
def console(tmp_path: Path, *, extra: str = "", smtp_port: int = 2525,
            clock: Callable[[], datetime] | None = None,
            store_url: str | None = None) -> Iterator[Console]:
    url = store_url or f"sqlite:///{tmp_path / 'console.db'}"
    path = tmp_path / "mailbot.toml"
    path.write_text(CONFIG.format(url=url, spool=tmp_path / "spool", smtp_port=smtp_port,
                                  extra=extra), encoding="utf-8")
    config = load_config(path)
    store = Store.open(url, secret=TEST_SECRET)
    now = clock or (lambda: datetime.now(UTC))
    accounts = Accounts(store.engine)
    for name, (role, issuers, contractor) in ACCOUNTS.items():
        accounts.add(name, PASSWORD, role, issuers, contractor, now())
    served = Background(config, store, clock=now, listen=("127.0.0.1", 0))
    served.start()
    running = Console(served.url, config, store, Ledger(store.engine, Spool(config.spool_dir)),
                      path, now)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        served.stop()
        store.close()

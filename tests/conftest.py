"""Fixtures: the guarantee store on SQLite and on a real PostgreSQL server; a real Dovecot;
a loopback DNS server for every check that names no resolver."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller

from mailbot.auth import dns as auth_dns
from mailbot.ledger import Ledger, Spool
from mailbot.outbox import SmtpSettings
from mailbot.store import Store

from .dns_server import dns_server
from .servers import Sink, create_database, dovecot_server, free_port, postgres_server

TEST_SECRET = b"test-secret-for-the-store-0123456789"
_db_names = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def no_system_resolver():
    """Authentication checks in this process that name no `[auth] resolvers` ask a loopback
    DNS server that knows no name (NXDOMAIN, as for the example.jp test domains), never the
    machine's resolver: on a machine without network that one may time out, and a mail
    waiting for DNS misses its test's deadline. Tests that serve records pass their own."""
    system = auth_dns.make_resolver
    with dns_server() as empty:
        def loopback_unless_named(settings):
            if not settings.resolvers:
                settings = replace(settings, resolvers=(empty.address,))
            return system(settings)

        auth_dns.make_resolver = loopback_unless_named
        try:
            yield empty
        finally:
            auth_dns.make_resolver = system


@pytest.fixture(scope="session")
def pg_server():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server = request.getfixturevalue("pg_server")
    return create_database(server, f"t{next(_db_names)}")


@pytest.fixture
def store(store_url):
    opened = Store.open(store_url, secret=TEST_SECRET)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path):
    """A store in a SQLite file of the test's own (for tests about something else)."""
    opened = Store.open(f"sqlite:///{tmp_path / 's.db'}", secret=b"x" * 32)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_ledger(sqlite_store, tmp_path):
    """The ledger of `sqlite_store`, spooling into the test's folder."""
    return Ledger(sqlite_store.engine, Spool(tmp_path / "spool"))


ISSUER_ADDRESS = "keiyaku@issuer.example.jp"
CONTRACTOR_ADDRESS = "contractor@maru.example.jp"
MAIL_USERS = {ISSUER_ADDRESS: "secret", CONTRACTOR_ADDRESS: "secret"}


@pytest.fixture
def dovecot():
    """A fresh Dovecot (IMAP + LMTP) per test: tests may stop it or reset UIDVALIDITY."""
    with dovecot_server(MAIL_USERS) as server:
        yield server


@pytest.fixture
def sink():
    """A real aiosmtpd server on loopback that records what it is sent (the relay)."""
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.settings = SmtpSettings(host="127.0.0.1", port=controller.port, timeout=10)
    yield handler
    controller.stop()

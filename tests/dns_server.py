"""A real DNS server on loopback for the authentication tests (dnslib, UDP and TCP).

It serves the zone the test gives it — DKIM keys, SPF and DMARC records of `example.jp` test
domains — over the real protocol, so dkimpy, pyspf and dnspython resolve through their own
code paths; nothing in the verification path is mocked. `silent = True` makes it stop
answering (the queries are read and dropped), for `temperror`; `queries` counts what it was
asked, so a test can tell a cached answer from a fresh one.

    with dns_server() as dns:
        dns.txt("sel._domainkey.city.example.jp", key.record)
        dns.txt("_dmarc.city.example.jp", "v=DMARC1; p=reject")
        settings = AuthSettings(resolvers=(dns.address,))
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def _chunks(text: str) -> list[bytes]:
    data = text.encode()
    return [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]


class Zone(BaseResolver):
    """Names → records; an unknown name is NXDOMAIN, a known name without the type NOERROR."""

    def __init__(self) -> None:
        self.records: dict[str, list[RR]] = {}
        self.silent = False
        self.queries: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, name: str, rtype: str, rdata: Any, ttl: int = 60) -> None:
        key = name.rstrip(".").lower() + "."
        with self.lock:
            self.records.setdefault(key, []).append(
                RR(key, getattr(QTYPE, rtype), rdata=rdata, ttl=ttl))

    def remove(self, name: str) -> None:
        with self.lock:
            self.records.pop(name.rstrip(".").lower() + ".", None)

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord | None:
        name = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((name, qtype))
            if self.silent:
                return None
            found = list(self.records.get(name, []))
        reply = request.reply()
        if not found:
            reply.header.rcode = RCODE.NXDOMAIN
        for record in found:
            if QTYPE[record.rtype] == qtype:
                reply.add_answer(record)
        return reply


class DnsServer:
    """The running server: `address` is "127.0.0.1:PORT" for `AuthSettings.resolvers`."""

    def __init__(self, zone: Zone, servers: list[DNSServer]) -> None:
        self.zone = zone
        self._servers = servers
        self.port = servers[0].server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"

    def txt(self, name: str, text: str) -> None:
        self.zone.add(name, "TXT", TXT(_chunks(text)))

    def a(self, name: str, address: str) -> None:
        self.zone.add(name, "A", A(address))

    def remove(self, name: str) -> None:
        self.zone.remove(name)

    @property
    def silent(self) -> bool:
        return self.zone.silent

    @silent.setter
    def silent(self, value: bool) -> None:
        self.zone.silent = value

    @property
    def queries(self) -> list[tuple[str, str]]:
        with self.zone.lock:
            return list(self.zone.queries)


class _QuietLogger(DNSLogger):
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data")


def _patch_handler() -> type:
    from dnslib.server import DNSHandler

    class Handler(DNSHandler):
        def get_reply(self, data: bytes) -> bytes | None:  # type: ignore[override]
            request = DNSRecord.parse(data)
            reply = self.server.resolver.resolve(request, self)
            return None if reply is None else reply.pack()

        def handle(self) -> None:
            if self.server.resolver.silent:
                return  # read and dropped: the client times out
            super().handle()

    return Handler


@contextmanager
def dns_server() -> Iterator[DnsServer]:
    """A DNS server on 127.0.0.1, UDP and TCP on one free port, stopped on exit."""
    zone = Zone()
    handler = _patch_handler()
    # A free UDP port whose TCP twin is free too: the kernel picks the UDP one from the
    # ephemeral range, where another test's outgoing TCP connection may hold the twin.
    for attempt in range(50):
        udp = DNSServer(zone, address="127.0.0.1", port=0, logger=_QuietLogger(),
                        handler=handler)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(zone, address="127.0.0.1", port=port, tcp=True,
                            logger=_QuietLogger(), handler=handler)
            break
        except OSError:
            udp.server.server_close()
            if attempt == 49:
                raise
    for server in (udp, tcp):
        server.start_thread()
    try:
        yield DnsServer(zone, [udp, tcp])
    finally:
        for server in (udp, tcp):
            server.stop()
            server.server.server_close()

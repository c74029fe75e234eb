"""DNS for the authentication checks: one dnspython resolver, answers cached per verdict.

`Lookup(settings)` is made once per `Authenticator.verdict` call, so a DKIM key, an SPF
record or a DMARC policy asked for twice in one mail costs one query and nothing is
remembered between mails (a key rotated or a policy tightened counts at the next mail).

The outcomes the checks distinguish: an answer (the records, possibly none: NXDOMAIN and
NOERROR-without-data both give `[]`), and `TempError` — the resolver did not answer in
`timeout_seconds`, or answered SERVFAIL/REFUSED. A name that cannot be a DNS name (a
sender's garbage in d= or a From domain) is `[]`, never an exception.
"""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from .settings import AuthSettings


class TempError(Exception):
    """DNS could not answer now: the check's result is `temperror`."""


def parse_resolver(text: str) -> tuple[str, int]:
    """"192.0.2.53", "192.0.2.53:5353", "[2001:db8::53]:53" or "2001:db8::53" → (ip, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def make_resolver(settings: AuthSettings) -> dns.resolver.Resolver:
    """A resolver on `settings.resolvers` (else /etc/resolv.conf) with its timeout."""
    if settings.resolvers:
        resolver = dns.resolver.Resolver(configure=False)
        servers: list[str | dns.nameserver.Nameserver] = []
        for item in settings.resolvers:
            host, port = parse_resolver(item)
            servers.append(dns.nameserver.Do53Nameserver(host, port))
        resolver.nameservers = servers
    else:
        resolver = dns.resolver.Resolver(configure=True)
    resolver.timeout = settings.timeout_seconds
    resolver.lifetime = settings.timeout_seconds
    resolver.retry_servfail = False
    return resolver


class Lookup:
    """Cached queries for one verdict (see the module docstring)."""

    def __init__(self, settings: AuthSettings, resolver: dns.resolver.Resolver | None = None
                 ) -> None:
        self.resolver = resolver or make_resolver(settings)
        self._cache: dict[tuple[str, str], list[Any] | TempError] = {}
        self.temp_errors: list[str] = []  # what could not be asked, for the verdict's error
        self.temp_hits = 0  # how often a query raised TempError (cached ones too)

    def query(self, name: str, rtype: str) -> list[Any]:
        """The rdata of `name`'s `rtype` records; `[]` for none; raises `TempError`."""
        key = (name.rstrip(".").lower(), rtype)
        if key not in self._cache:
            self._cache[key] = self._ask(*key)
        found = self._cache[key]
        if isinstance(found, TempError):
            self.temp_hits += 1
            raise found
        return found

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record of `name`, its strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        return [b"".join(r.strings) for r in self.query(name, "TXT")]

    def _ask(self, name: str, rtype: str) -> list[Any] | TempError:
        try:
            qname = dns.name.from_text(name)
        except (dns.exception.DNSException, ValueError, UnicodeError):
            return []  # not a DNS name: nothing is published under it
        try:
            answer = self.resolver.resolve(qname, rtype, search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers,
                dns.resolver.NoResolverConfiguration) as exc:
            error = TempError(f"DNS {rtype} {name}: {type(exc).__name__}")
            self.temp_errors.append(str(error))
            return error
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            error = TempError(f"DNS {rtype} {name}: {type(exc).__name__}")
            self.temp_errors.append(str(error))
            return error
        return list(answer) if answer.rrset is not None else []

"""DKIM keys and signatures for the authentication tests: real RSA keys (cryptography),
real signatures (dkimpy), and the TXT record a test's DNS server publishes for them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class DkimKey:
    private_pem: bytes
    record: str  # the TXT record of the selector: "v=DKIM1; k=rsa; p=…"


@cache
def dkim_key(name: str = "default") -> DkimKey:
    """An RSA-2048 key pair, one per `name` per test session (generation costs ~0.1 s)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return DkimKey(private, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode())


HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
           b"x-mailbot-result", b"content-type", b"mime-version", b"reply-to")


def sign(raw: bytes, domain: str, selector: str = "sel", key: DkimKey | None = None) -> bytes:
    """`raw` with a DKIM-Signature of `domain` prepended (relaxed/relaxed, rsa-sha256)."""
    key = key or dkim_key(domain)
    present = {line.split(b":", 1)[0].strip().lower()
               for line in raw.split(b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n", 1)[0]
               .splitlines() if b":" in line and not line[:1].isspace()}
    signature = dkim.sign(raw, selector.encode(), domain.encode(), key.private_pem,
                          canonicalize=(b"relaxed", b"relaxed"),
                          include_headers=[h for h in HEADERS if h in present])
    return signature + raw


def publish(dns: object, domain: str, selector: str = "sel", key: DkimKey | None = None) -> None:
    """Publish `domain`'s DKIM key under `selector` on the test DNS server `dns`."""
    key = key or dkim_key(domain)
    dns.txt(f"{selector}._domainkey.{domain}", key.record)  # type: ignore[attr-defined]
